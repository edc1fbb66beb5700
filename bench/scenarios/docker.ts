/**
 * Scenario "docker": the Docker path, podbridge (`--backend docker`, OpenSSH client -> bridge ->
 * Engine API) against `docker exec -i` (the Docker CLI straight to the Engine), on a dockerd of
 * its own (test/helpers/dockerd.ts: temp data root, images made offline). Rounds alternate the
 * two paths (lib/context.ts alternate). Download and upload are timed from the remote command's
 * first stderr byte to exit, as in the throughput scenario; `true` from spawn to exit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startTestDockerd, TEST_IMAGE, type TestDockerd } from '../../test/helpers/dockerd.ts';
import { startBridgeProcess, type BridgeProcess } from '../lib/bridge.ts';
import { alternate, errorOf, type BenchContext, type PathError } from '../lib/context.ts';
import { startChild } from '../lib/proc.ts';
import { MARK_THEN, awaitTimedExit, opensshDownload, opensshTrue, opensshUpload, type SshEndpoint } from '../lib/ssh-clients.ts';
import { summarize, type Summary } from '../lib/stats.ts';

type DockerPathName = 'podbridge-docker' | 'docker-exec';

export interface DockerBenchResult {
  bytes: number;
  rounds: number;
  engine: string;
  download: Partial<Record<DockerPathName, Summary | PathError>>;
  upload: Partial<Record<DockerPathName, Summary | PathError>>;
  /** ms for one `true`, connection and exec set-up included. */
  sshTrue: Partial<Record<DockerPathName, Summary | PathError>>;
  truncated: boolean;
}

interface DockerPath {
  name: DockerPathName;
  download(bytes: number, timeoutMs: number): Promise<number>;
  upload(bytes: number, timeoutMs: number): Promise<number>;
  runTrue(): Promise<number>;
}

export async function dockerScenario(ctx: BenchContext, bridgeRoot: string, bytes: number, rounds: number, deadline: number): Promise<DockerBenchResult | PathError> {
  let dockerd: TestDockerd | null = null;
  let bridge: BridgeProcess | null = null;
  try {
    ctx.progress('docker: starting a dockerd of its own');
    dockerd = await startTestDockerd();
    await dockerd.docker(['run', '-d', '--network', 'none', '--name', 'web', TEST_IMAGE, 'sleep', '1000000']);
    bridge = await startBridgeProcess({
      root: bridgeRoot,
      dir: path.join(ctx.workDir, 'bridge-docker'),
      kubeconfig: '',
      publicKeyLine: ctx.key.publicLine,
      backendArgs: ['--backend', 'docker', '--docker-host', dockerd.host],
    });
    const ep: SshEndpoint = { port: bridge.port, user: 'web' };
    const d = dockerd;
    const viaCli = (command: string, input: 'ignore' | 'zero', bytesIn: number, timeoutMs: number) => {
      const at = performance.now();
      const args = ['-H', d.host, 'exec', '-i', 'web', 'sh', '-c', MARK_THEN(command)];
      const child =
        input === 'zero'
          ? startChild('sh', ['-c', 'head -c "$0" /dev/zero | exec docker "$@"', String(bytesIn), ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
          : startChild('docker', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      return awaitTimedExit(child, `docker exec ${command}`, timeoutMs, at);
    };
    const paths: DockerPath[] = [
      {
        name: 'podbridge-docker',
        download: async (n, t) => (await opensshDownload(ep, ctx.key, n, t)).seconds,
        upload: async (n, t) => (await opensshUpload(ep, ctx.key, n, t)).seconds,
        runTrue: () => opensshTrue(ep, ctx.key),
      },
      {
        name: 'docker-exec',
        download: async (n, t) => (await viaCli(`head -c ${n} /dev/zero`, 'ignore', 0, t)).seconds,
        upload: async (n, t) => (await viaCli('cat > /dev/null', 'zero', n, t)).seconds,
        runTrue: async () => (await viaCli('true', 'ignore', 0, 60_000)).wallSeconds * 1000,
      },
    ];
    const down: Partial<Record<DockerPathName, number[]>> = {};
    const up: Partial<Record<DockerPathName, number[]>> = {};
    const trues: Partial<Record<DockerPathName, number[]>> = {};
    const errors: Partial<Record<DockerPathName, PathError>> = {};
    const timeoutMs = Math.max(60_000, (bytes / (5 * 2 ** 20)) * 1000);
    const { done, truncated } = await alternate(paths, rounds, deadline, async (p) => {
      if (errors[p.name]) return;
      try {
        (down[p.name] ??= []).push(bytes / 2 ** 20 / (await p.download(bytes, timeoutMs)));
        (up[p.name] ??= []).push(bytes / 2 ** 20 / (await p.upload(bytes, timeoutMs)));
        (trues[p.name] ??= []).push(await p.runTrue());
      } catch (err) {
        errors[p.name] = errorOf(err);
        ctx.progress(`  docker ${p.name}: ${errors[p.name]?.error}`);
      }
    });
    const pick = (m: Partial<Record<DockerPathName, number[]>>, digits: number) =>
      Object.fromEntries(paths.map((p) => [p.name, errors[p.name] ?? summarize(m[p.name] ?? [0], digits)])) as Partial<Record<DockerPathName, Summary | PathError>>;
    const engine = (await dockerd.docker(['version', '-f', '{{.Server.Version}} (API {{.Server.APIVersion}})'])).trim();
    return { bytes, rounds: done, engine, download: pick(down, 1), upload: pick(up, 1), sshTrue: pick(trues, 1), truncated };
  } catch (err) {
    ctx.progress(`docker: ${errorOf(err).error}`);
    return errorOf(err);
  } finally {
    await bridge?.stop();
    await dockerd?.stop();
    if (bridge) fs.rmSync(path.join(ctx.workDir, 'bridge-docker'), { recursive: true, force: true });
  }
}

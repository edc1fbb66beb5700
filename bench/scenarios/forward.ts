/**
 * Scenario "forward": forwarded TCP into a pod, podbridge (`ssh -N -L` through the bridge, which
 * uses pods/portforward) against `kubectl port-forward` on the same pod port, both against a fake
 * kube-apiserver of this scenario's own whose pod port 8080 is a local source of bytes. Each round
 * connects to each local forward in turn (lib/context.ts alternate) and times N bytes from the
 * first byte to the last.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { FakeKubeApiServer } from '../../test/fixtures/kube-apiserver/server.ts';
import { startBridgeProcess, type BridgeProcess } from '../lib/bridge.ts';
import { writeDiscoveryCache } from '../lib/cluster.ts';
import { alternate, errorOf, type BenchContext, type PathError } from '../lib/context.ts';
import { startChild, stopChild } from '../lib/proc.ts';
import { sshArgs } from '../lib/ssh-clients.ts';
import { freePort, waitForPort } from '../../test/helpers/ports.ts';
import { summarize, type Summary } from '../lib/stats.ts';
import type { ChildProcess } from 'node:child_process';

type ForwardPathName = 'podbridge-forward' | 'kubectl-port-forward';

export interface ForwardBenchResult {
  bytes: number;
  rounds: number;
  /** MiB/s from the pod port to the local client. */
  download: Partial<Record<ForwardPathName, Summary | PathError>>;
  truncated: boolean;
}

const POD_PORT = 8080;

export async function forwardScenario(ctx: BenchContext, bridgeRoot: string, bytes: number, rounds: number, deadline: number): Promise<ForwardBenchResult | PathError> {
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  // The pod's service: every connection gets `bytes` bytes, then the end.
  const source = net.createServer((socket) => {
    socket.on('error', () => undefined);
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void socket.once('drain', pump);
      }
      socket.end();
    };
    pump();
  });
  let api: FakeKubeApiServer | null = null;
  let bridge: BridgeProcess | null = null;
  const children: ChildProcess[] = [];
  try {
    await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
    const sourcePort = (source.address() as net.AddressInfo).port;
    api = await FakeKubeApiServer.start({ port: 0 });
    api.addNamespace('bench');
    api.addPod({ namespace: 'bench', name: 'fwd', containers: [{ name: 'main' }] });
    api.exposePodPort('bench', 'fwd', POD_PORT, sourcePort);
    const dir = path.join(ctx.workDir, 'forward');
    fs.mkdirSync(dir, { recursive: true });
    const kubeconfig = path.join(dir, 'kubeconfig');
    api.writeKubeconfig(kubeconfig, { namespace: 'bench' });
    const cacheDir = path.join(dir, 'kubectl-cache');
    writeDiscoveryCache(cacheDir, api.url);
    bridge = await startBridgeProcess({ root: bridgeRoot, dir: path.join(dir, 'bridge'), kubeconfig, publicKeyLine: ctx.key.publicLine });

    const viaSsh = await freePort();
    children.push(startChild('ssh', sshArgs({ port: bridge.port, user: 'bench.fwd' }, ctx.key, ['-N', '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${viaSsh}:localhost:${POD_PORT}`]), { stdio: ['ignore', 'ignore', 'pipe'] }));
    const viaKubectl = await freePort();
    children.push(
      startChild('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, '-n', 'bench', 'port-forward', '--address', '127.0.0.1', 'pod/fwd', `${viaKubectl}:${POD_PORT}`], { stdio: ['ignore', 'ignore', 'pipe'] }),
    );
    const [sshUp, kubectlUp] = await Promise.all([waitForPort(viaSsh, 30_000), waitForPort(viaKubectl, 30_000)]);
    if (!sshUp || !kubectlUp) throw new Error(`${sshUp ? 'kubectl port-forward' : 'ssh -L'} did not listen within 30 s`);

    const paths: Array<{ name: ForwardPathName; port: number }> = [
      { name: 'podbridge-forward', port: viaSsh },
      { name: 'kubectl-port-forward', port: viaKubectl },
    ];
    const down: Partial<Record<ForwardPathName, number[]>> = {};
    const errors: Partial<Record<ForwardPathName, PathError>> = {};
    const timeoutMs = Math.max(60_000, (bytes / (5 * 2 ** 20)) * 1000);
    const { done, truncated } = await alternate(paths, rounds, deadline, async (p) => {
      if (errors[p.name]) return;
      try {
        (down[p.name] ??= []).push(bytes / 2 ** 20 / (await timedRead(p.port, bytes, timeoutMs)));
      } catch (err) {
        errors[p.name] = errorOf(err);
        ctx.progress(`  forward ${p.name}: ${errors[p.name]?.error}`);
      }
    });
    const download = Object.fromEntries(paths.map((p) => [p.name, errors[p.name] ?? summarize(down[p.name] ?? [0], 1)])) as Partial<Record<ForwardPathName, Summary | PathError>>;
    return { bytes, rounds: done, download, truncated };
  } catch (err) {
    ctx.progress(`forward: ${errorOf(err).error}`);
    return errorOf(err);
  } finally {
    for (const c of children) await stopChild(c, 'SIGTERM', 3000);
    await bridge?.stop();
    await api?.stop();
    source.close();
  }
}

/** Seconds from the first byte to the last of `bytes` read from 127.0.0.1:port. */
function timedRead(port: number, bytes: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let got = 0;
    let first = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`read ${got} of ${bytes} bytes in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on('data', (b: Buffer) => {
      if (got === 0) first = performance.now();
      got += b.length;
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (got !== bytes) return reject(new Error(`got ${got} of ${bytes} bytes`));
      resolve((performance.now() - first) / 1000);
    });
  });
}

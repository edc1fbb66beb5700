/**
 * A supervisor stopping the bridge as `docker stop` and Kubernetes do: SIGTERM, then SIGKILL at
 * the documented bound (--shutdown-grace + --terminate-grace + 2 s; 9 s with the defaults). The
 * real CLI with its default settings, the fake kube-apiserver whose containers are local
 * processes: what is asserted is what an operator would check afterwards, that the command a
 * user left running is gone from the container, and what the user was told.
 */
// test-budget: file 120 s, test 60 s
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { compiled } from '../helpers/paths.ts';
import { InteractiveSsh, makeClientKey } from '../helpers/ssh-client.ts';
import { waitUntil } from '../helpers/wait.ts';

/** The documented default: docs/operations.md, "Drain and upgrades". */
const DEFAULT_STOP_BOUND_MS = 5_000 + 2_000 + 2_000;

let cluster: TestCluster;
before(async () => {
  cluster = await startTestCluster();
  cluster.api.addPod({ namespace: 'team-a', name: 'drain-1', containers: [{ name: 'app' }] });
});
after(() => cluster.stop());

/** Processes in the container running exactly this argv. */
function running(argv: string[]): number[] {
  return cluster.api.containerProcesses('team-a', 'drain-1', 'app').filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `${argv.join('\0')}\0`;
    } catch {
      return false;
    }
  });
}

describe('drain on SIGTERM (docker stop, a rolling upgrade)', () => {
  it('tells the user, ends the session, and leaves nothing running in the container by the bound', async () => {
    const key = makeClientKey();
    const ak = path.join(cluster.dir, 'authorized_keys');
    fs.writeFileSync(ak, `${key.publicLine}\n`);
    const bridge = spawn(
      process.execPath,
      [compiled('src/cli.ts'), 'serve', '--backend', 'kubernetes', '--kubeconfig', cluster.kubeconfig, '--listen', '127.0.0.1:0', '--host-key', path.join(cluster.dir, 'host_key'), '--authorized-keys', ak],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines: Array<Record<string, unknown>> = [];
    let rest = '';
    bridge.stdout.on('data', (b: Buffer) => {
      const parts = (rest + b.toString()).split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => bridge.once('exit', (code, signal) => resolve({ code, signal })));
    let term: InteractiveSsh | null = null;
    try {
      await waitUntil('the bridge to listen', () => lines.some((l) => l.msg === 'listening'));
      const port = Number(String(lines.find((l) => l.msg === 'listening')!.address).split(':').pop());
      term = new InteractiveSsh({ port, key, login: 'team-a.drain-1', command: 'sleep 300' });
      await waitUntil('sleep 300 to run in the container', () => running(['sleep', '300']).length === 1);

      const sentAt = Date.now();
      bridge.kill('SIGTERM');
      // What `docker stop` does at its timeout: SIGKILL, whatever the process is doing.
      const killer = setTimeout(() => bridge.kill('SIGKILL'), DEFAULT_STOP_BOUND_MS);
      const how = await exited;
      clearTimeout(killer);

      assert.deepEqual(running(['sleep', '300']), [], 'the command is still running in the container');
      assert.equal(await term.waitExit(15_000), 255);
      assert.match(term.output, /podbridge: podbridge is shutting down; this session ends in 5 s/);
      assert.match(term.output, /podbridge: session ended: podbridge shut down/);
      // Its log says which step was slow when it is not (pino lines carry their time).
      assert.deepEqual(how, { code: 0, signal: null }, `the bridge finished on its own before the SIGKILL; its log from SIGTERM on:\n${lines.filter((l) => Date.parse(String(l.time)) >= sentAt).map((l) => `+${Date.parse(String(l.time)) - sentAt} ms ${JSON.stringify(l)}`).join('\n')}`);
      const stop = lines.find((l) => l.msg === 'shutting down');
      assert.equal(stop?.exitWithinSeconds, DEFAULT_STOP_BOUND_MS / 1000);
    } finally {
      term?.kill();
      if (bridge.exitCode === null) bridge.kill('SIGKILL');
    }
  });
});

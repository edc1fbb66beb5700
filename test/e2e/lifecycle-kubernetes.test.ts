/**
 * Session lifecycle on the Kubernetes backend, end to end: the real OpenSSH client (ssh2's client
 * where OpenSSH cannot: signal requests), a real bridge, the fake kube-apiserver whose
 * "containers" are local processes. What is asserted is what a user or an operator notices:
 * which processes are left in the container, exit statuses, the one line on stderr, and the
 * bytes received before a fault.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { InteractiveSsh, runSsh, sshArgs } from '../helpers/ssh-client.ts';
import { waitUntil } from '../helpers/wait.ts';

let cluster: TestCluster;
let b: TestBridge;
let podN = 0;

/** A fresh pod per test, so the container's process list belongs to that test alone. */
function newPod(prefix = 'lc'): string {
  const name = `${prefix}-${++podN}`;
  cluster.api.addPod({ namespace: 'team-a', name, containers: [{ name: 'app' }] });
  return name;
}
const procs = (pod: string) => cluster.api.containerProcesses('team-a', pod, 'app');
/** The container's processes running exactly this argv (the "containers" are local processes). */
const running = (pod: string, ...argv: string[]) =>
  procs(pod).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') === `${argv.join('\0')}\0`;
    } catch {
      return false;
    }
  });

/** The bridge's log line for the cleanup of a pod's session. */
async function logged(pod: string): Promise<Record<string, unknown>> {
  const find = () => b.logs.find((l) => l.msg === 'session processes ended' && l.pod === pod);
  await waitUntil(() => 'no "session processes ended" log line', () => find() !== undefined, 10_000);
  return find() ?? {};
}

/** `ssh login command` that we can cut off like a laptop that went away. */
class Ssh {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exit: Promise<number | null>;

  constructor(bridge: TestBridge, login: string, command: string) {
    this.child = spawn('ssh', [...sshArgs(bridge.port, bridge.key), `${login}@127.0.0.1`, command], { stdio: 'pipe' });
    this.child.stdout.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdin.on('error', () => {});
    this.exit = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  async waitExit(ms: number): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`ssh did not exit within ${ms} ms; stderr: ${this.stderr}`)), ms);
    });
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(timer);
      this.child.kill('SIGKILL');
    }
  }

  /** The client vanishes: no channel close, no disconnect message. */
  drop(): void {
    this.child.kill('SIGKILL');
  }
}

/** After the client is gone, the container must empty within this (HUP, 2 s grace, KILL, exec). */
const CLEANUP_MS = 10_000;

before(async () => {
  cluster = await startTestCluster();
  b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig });
});
after(async () => {
  await b.close();
  await cluster.stop();
});

describe('nothing left behind when the client goes away', () => {
  it('an interactive shell with a background job', async () => {
    const pod = newPod();
    const s = new InteractiveSsh({ port: b.port, key: b.key, login: `team-a.${pod}` });
    try {
      s.write('sleep 1000 &\r');
      s.write('echo ok-$((40+2))\r');
      await s.waitFor(/ok-42/);
      assert.ok(procs(pod).length >= 2, 'the shell and its job run');
    } finally {
      s.kill();
    }
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, CLEANUP_MS);
    assert.ok(!s.output.includes('podbridge-pid'), 'the bookkeeping never reached the terminal');
    // The container empties with the KILL; the script's report and our log line follow.
    const ended = await logged(pod);
    assert.equal(ended.leader, 'ok');
  });

  it('`sleep 1000` as a command', async () => {
    const pod = newPod();
    const s = new Ssh(b, `team-a.${pod}`, 'sleep 1000');
    await waitUntil(() => `never started; stderr: ${s.stderr}`, () => procs(pod).length > 0, 10_000);
    s.drop();
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, CLEANUP_MS);
  });

  it("`sh -c 'sleep 1000 & wait'`", async () => {
    const pod = newPod();
    const s = new Ssh(b, `team-a.${pod}`, "sh -c 'sleep 1000 & wait'");
    // `sh -c '…'` is a simple command, exec'd by the wrapper's shell: the inner sh and its sleep.
    await waitUntil(() => `never started; stderr: ${s.stderr}`, () => procs(pod).length >= 2, 10_000);
    s.drop();
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, CLEANUP_MS);
  });

  it('a TTY shell with vi running', async () => {
    const pod = newPod();
    const s = new InteractiveSsh({ port: b.port, key: b.key, login: `team-a.${pod}` });
    try {
      s.write('echo ok-$((40+2))\r');
      await s.waitFor(/ok-42/);
      const from = s.output.length;
      s.write('vi notes.txt\r');
      await s.waitFor(/notes\.txt/, 15_000, from);
      assert.ok(procs(pod).length >= 2, 'the shell and vi run');
    } finally {
      s.kill();
    }
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, CLEANUP_MS);
  });

  it('processes that detached, made their own session, or ignore SIGHUP', async () => {
    const pod = newPod();
    const cmd = `(sleep 1001 &); setsid sleep 1002 & nohup sh -c 'trap "" HUP; sleep 1003' >/dev/null 2>&1 & env -i sleep 1004 & echo ready; sleep 1000`;
    const s = new Ssh(b, `team-a.${pod}`, cmd);
    await waitUntil(() => `never started; stderr: ${s.stderr}`, () => s.stdout.includes('ready') && procs(pod).length >= 6, 10_000);
    s.drop();
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, CLEANUP_MS);
    const ended = await logged(pod);
    assert.ok(Number(ended.killed) >= 1, 'the one that ignored SIGHUP needed SIGKILL after the grace period');
  });

  it('the bridge ends a session (idle timeout): the user is told, the container is emptied', async () => {
    const idle = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig, idleTimeout: 2, sessionWarning: 1 });
    try {
      const pod = newPod();
      const s = new Ssh(idle, `team-a.${pod}`, 'echo ready; sleep 1000 & sleep 1001');
      const code = await s.waitExit(20_000);
      assert.equal(code, 255);
      assert.match(s.stderr, /^podbridge: session ended: idle for 2 s$/m);
      await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, CLEANUP_MS);
    } finally {
      await idle.close();
    }
  });

  it('the bridge shuts down: every session is ended and its container emptied', async () => {
    const doomed = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig });
    const pod = newPod();
    const s = new Ssh(doomed, `team-a.${pod}`, 'sleep 1000 & echo ready; wait');
    try {
      await waitUntil(() => `never started; stderr: ${s.stderr}`, () => s.stdout.includes('ready'), 10_000);
    } finally {
      await doomed.close();
    }
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, CLEANUP_MS);
    await s.waitExit(10_000);
  });
});

describe('signals', () => {
  /** Runs `command` through ssh2's client (OpenSSH has no way to send a signal request). */
  function withSession(login: string, command: string, script: (stream: ssh2.ClientChannel, output: () => string) => Promise<void>): Promise<{ code: unknown; signal: unknown }> {
    return new Promise((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('error', reject);
      c.on('ready', () => {
        c.exec(command, (err, stream) => {
          if (err) return reject(err);
          let out = '';
          stream.on('data', (d: Buffer) => (out += d.toString()));
          stream.stderr.on('data', (d: Buffer) => (out += d.toString()));
          let exit: { code: unknown; signal: unknown } = { code: undefined, signal: undefined };
          stream.on('exit', (code: unknown, signal: unknown) => (exit = { code, signal }));
          stream.on('close', () => {
            c.end();
            resolve(exit);
          });
          script(stream, () => out).catch((e: unknown) => {
            c.end();
            reject(e);
          });
        });
      });
      c.connect({ host: '127.0.0.1', port: b.port, username: login, privateKey: fs.readFileSync(b.key.keyFile) });
    });
  }

  it('INT, HUP, QUIT, USR1, USR2 reach the command; KILL ends it as exit-signal KILL, like sshd', async () => {
    const pod = newPod();
    const traps = ['INT', 'HUP', 'QUIT', 'USR1', 'USR2'].map((s) => `trap 'echo got-${s}' ${s};`).join(' ');
    const exit = await withSession(`team-a.${pod}`, `${traps} echo ready; while :; do sleep 0.1; done`, async (stream, out) => {
      await waitUntil(out, () => out().includes('ready'), 10_000);
      for (const sig of ['INT', 'HUP', 'QUIT', 'USR1', 'USR2']) {
        stream.signal(sig);
        await waitUntil(() => `${sig}: ${out()}`, () => out().includes(`got-${sig}`), 10_000);
      }
      stream.signal('KILL');
    });
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, 5000);
  });

  it('TERM to `sleep 1000` is reported as exit-signal TERM', async () => {
    const pod = newPod();
    const exit = await withSession(`team-a.${pod}`, 'sleep 1000', async (stream) => {
      await waitUntil(() => 'sleep never started', () => procs(pod).length > 0, 10_000);
      stream.signal('TERM');
    });
    assert.deepEqual(exit, { code: null, signal: 'SIGTERM' });
  });

  it('an exit code stays an exit code: `exit 143` with no signal sent', async () => {
    const pod = newPod();
    const r = await runSsh({ port: b.port, key: b.key, login: `team-a.${pod}`, command: 'exit 143' });
    assert.equal(r.code, 143);
    assert.equal(r.stderr, '');
  });

  it('Ctrl-C in a TTY interrupts the foreground command as a byte', async () => {
    const pod = newPod();
    const s = new InteractiveSsh({ port: b.port, key: b.key, login: `team-a.${pod}` });
    try {
      s.write('sleep 1000\r');
      // The sleep itself, not a shell still forking it: a Ctrl-C before the exec goes to the shell.
      await waitUntil(() => s.output, () => running(pod, 'sleep', '1000').length === 1, 10_000);
      s.write('\x03');
      await waitUntil(() => `sleep still there: ${procs(pod).join(' ')}`, () => running(pod, 'sleep', '1000').length === 0, 10_000);
      s.write('echo after-$((6*7))\r');
      await s.waitFor(/after-42/);
    } finally {
      s.kill();
    }
  });
});

describe('the pod goes away mid-session', () => {
  it('pod deleted: one line that says so, status 255, never a hang', async () => {
    const pod = newPod();
    const s = new Ssh(b, `team-a.${pod}`, 'echo started; sleep 1000');
    await waitUntil(() => s.stderr, () => s.stdout.includes('started'), 10_000);
    cluster.api.deletePod('team-a', pod);
    assert.equal(await s.waitExit(10_000), 255);
    assert.equal(s.stdout, 'started\n');
    assert.equal(s.stderr, `podbridge: pod "${pod}" in namespace "team-a" was deleted; the session ended with it\n`);
  });

  it('container restarted: one line that says so, status 255', async () => {
    const pod = newPod();
    const s = new Ssh(b, `team-a.${pod}`, 'echo started; sleep 1000');
    await waitUntil(() => s.stderr, () => s.stdout.includes('started'), 10_000);
    cluster.api.updatePod('team-a', pod, { containers: [{ name: 'app', state: { terminated: { reason: 'Error', exitCode: 2 } } }] });
    cluster.api.updatePod('team-a', pod, { containers: [{ name: 'app' }], restartCount: 1 });
    assert.equal(await s.waitExit(10_000), 255);
    assert.equal(s.stderr, `podbridge: container "app" in pod "${pod}" in namespace "team-a" restarted; the session ended with it\n`);
  });
});

describe('API server faults', () => {
  const lines = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\n`).join('');

  it('the exec WebSocket dies: a clear line, 255, every byte received before it; cleanup; the bridge goes on', async () => {
    const pod = newPod();
    const s = new Ssh(b, `team-a.${pod}`, 'seq 1 20000; echo printed; sleep 1000');
    await waitUntil(() => s.stderr, () => s.stdout.includes('printed'), 15_000);
    assert.ok(cluster.api.dropConnections() >= 1);
    assert.equal(await s.waitExit(15_000), 255);
    assert.equal(s.stdout, `${lines(20000)}printed\n`);
    assert.match(s.stderr, new RegExp(`^podbridge: connection to pod "${pod}" in namespace "team-a" lost before it reported an exit status`));
    assert.equal(s.stderr.split('\n').filter(Boolean).length, 1, 'one line');
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, CLEANUP_MS);
    const r = await runSsh({ port: b.port, key: b.key, login: `team-a.${pod}`, command: 'echo still-serving' });
    assert.equal(r.stdout.toString(), 'still-serving\n');
  });

  it('the API server is down, then back: clear errors meanwhile, new sessions work after, leftovers cleaned up', async () => {
    const pod = newPod();
    const s = new Ssh(b, `team-a.${pod}`, 'echo started; sleep 1000');
    await waitUntil(() => s.stderr, () => s.stdout.includes('started'), 10_000);
    try {
      cluster.api.stopListening();
      cluster.api.dropConnections();
      assert.equal(await s.waitExit(15_000), 255);
      assert.match(s.stderr, /^podbridge: connection to pod .* lost before it reported an exit status/);
      const refused = await runSsh({ port: b.port, key: b.key, login: `team-a.${pod}`, command: 'true' });
      assert.equal(refused.code, 255);
      assert.match(refused.stderr, /^podbridge: cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:\d+: connection refused; check --kubeconfig\/--context and the network\r?\n$/);
      assert.ok(procs(pod).length > 0, 'nobody could stop them while the API server was down');
    } finally {
      await cluster.api.listenAgain();
    }
    const r = await runSsh({ port: b.port, key: b.key, login: `team-a.${pod}`, command: 'echo back' });
    assert.equal(r.stdout.toString(), 'back\n');
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, 20_000);
  });

  it('the API server refuses new connections: the error is clear, and a running session is unaffected', async () => {
    const pod = newPod();
    const s = new InteractiveSsh({ port: b.port, key: b.key, login: `team-a.${pod}` });
    try {
      s.write('echo one-$((1+1))\r');
      await s.waitFor(/one-2/);
      cluster.api.stopListening();
      const refused = await runSsh({ port: b.port, key: b.key, login: `team-a.${pod}`, command: 'true' });
      assert.equal(refused.code, 255);
      assert.match(refused.stderr, /cannot reach the Kubernetes API server .*: connection refused/);
      const from = s.output.length;
      s.write('echo two-$((2+2))\r');
      await s.waitFor(/two-4/, 10_000, from);
    } finally {
      await cluster.api.listenAgain();
      s.kill();
    }
    await waitUntil(() => `left: ${procs(pod).join(' ')}`, () => procs(pod).length === 0, CLEANUP_MS);
  });
});

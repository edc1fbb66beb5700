/**
 * The Kubernetes side of the session lifecycle, below the SSH layer:
 * - the control script (signals, cleanup) run for real by dash, bash and busybox sh against
 *   process trees built the way runc starts an exec (a new session, the marker in the
 *   environment), with decoys that must survive;
 * - the PID report stripped from stdout, even split over frames;
 * - the backend against the fake kube-apiserver: terminate() leaves nothing, signals reach the
 *   main process, a signal death is reported as such, a deleted pod or restarted container is
 *   named, a hung stream ends and is cleaned up, and a container without /bin/sh is logged as a
 *   cleanup that could not be guaranteed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket, { WebSocketServer } from 'ws';
import type { Backend, Exit, ProcessSpec, RemoteProcess } from '../../src/backends/backend.ts';
import { CONTROL_SCRIPT, controlArgv, parseControlReport, type Leader } from '../../src/backends/exec/control/control-script.ts';
import { ExecProcess as ExecStream } from '../../src/backends/exec/exec-process.ts';
import { kubernetesExecWords } from '../../src/backends/kubernetes/exec-errors.ts';
import { createKubernetesBackend, type KubernetesBackendOptions } from '../../src/backends/kubernetes/index.ts';
import { execProcessControl, type ProcessControl, type ScriptOutcome } from '../../src/backends/exec/control/process-control.ts';
import { PROTOCOL_V5 } from '../../src/backends/kubernetes/channel/websocket-frames.ts';
import { WebSocketTransport } from '../../src/backends/kubernetes/channel/websocket.ts';
import { testIdentity } from '../helpers/identity.ts';
import { createLogger, silentLogger } from '../../src/log.ts';
import type { Target } from '../../src/target.ts';
import { FakeKubeApiServer } from '../fixtures/kube-apiserver/index.ts';
import { waitUntil } from '../helpers/wait.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-lifecycle-unit-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// helpers

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function startTime(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

/** PIDs of processes whose environment holds NAME=VALUE (what the tree looks like now). */
function pidsWithEnv(entry: string): number[] {
  const out: number[] = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      if (fs.readFileSync(`/proc/${ent}/environ`).toString('latin1').split('\0').includes(entry)) out.push(Number(ent));
    } catch {
      // gone
    }
  }
  return out;
}

/** PIDs whose session ID (field 6 of /proc/PID/stat) is `sid`. */
function sessionMembers(sid: number): number[] {
  const out: number[] = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]) === sid) out.push(Number(ent));
    } catch {
      // gone
    }
  }
  return out;
}

/** A session tree as runc would start it: its own session (detached), the marker in its env. */
function startTree(tag: string, script: string, extraEnv: Record<string, string> = {}): ChildProcess {
  const child = spawn('/bin/sh', ['-c', script], {
    detached: true,
    stdio: 'ignore',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PODBRIDGE_SESSION: tag, ...extraEnv },
  });
  child.unref();
  return child;
}

function killQuietly(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Runs the control script locally the way the second exec runs it: its own session. */
function localRunner(shell: string[]) {
  return (argv: string[], timeoutMs: number): Promise<ScriptOutcome> =>
    new Promise((resolve) => {
      const [, , script, ...args] = argv;
      const child = spawn(shell[0] ?? '/bin/sh', [...shell.slice(1), '-c', script ?? '', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        const exit: Exit = { kind: 'code', code: code ?? 255 };
        resolve({ ran: true, stdout, stderr, exit });
      });
    });
}

const SHELLS: Array<{ name: string; argv: string[] }> = [
  { name: 'dash', argv: ['dash'] },
  { name: 'bash', argv: ['bash'] },
  { name: 'busybox sh', argv: ['busybox', 'sh'] },
].filter((s) => spawnSync(s.argv[0] ?? '', [...s.argv.slice(1), '-c', 'exit 0']).status === 0);

// Every shape a session's processes take: a background job, a job reparented to PID 1, a
// process that made its own session (setsid, so only the marker finds it), a nested shell that
// ignores SIGHUP (only SIGKILL ends it), a process in its own process group, and one that
// cleared its environment but stayed in the session.
const TREE = `sleep 1001 &
(sleep 1002 &)
setsid sleep 1003 &
sh -c 'trap "" HUP; sleep 1004 & wait' &
set -m; sleep 1005 & set +m
env -i sleep 1006 &
echo ready > "$READY"
wait`;

// ---------------------------------------------------------------------------------------------

describe('control script (run locally by each POSIX shell at hand)', () => {
  for (const shell of SHELLS) {
    it(`${shell.name}: terminate leaves none of the session's processes and nothing else is touched`, async () => {
      const tag = `t${process.pid}${shell.name.replace(/\W/g, '')}`;
      const ready = path.join(tmp, `${tag}.ready`);
      const tree = startTree(tag, TREE, { READY: ready });
      // Decoys: another session's tree (other tag) and an unmarked process in a session of its own.
      const decoy = startTree(`${tag}-other`, 'sleep 1007 & wait');
      const bystander = spawn('sleep', ['1008'], { detached: true, stdio: 'ignore' });
      bystander.unref();
      try {
        await waitUntil('tree ready', () => fs.existsSync(ready), 10_000);
        const members = () => [...new Set([...pidsWithEnv(`PODBRIDGE_SESSION=${tag}`), ...sessionMembers(tree.pid ?? 0)])];
        // sh, 1001, 1002, 1003 (own session), sh + 1004, 1005, 1006 (no marker, same session)
        await waitUntil(`tree is running: ${members().join(' ')}`, () => members().length >= 8, 5000);
        const marked = members();
        const others = pidsWithEnv(`PODBRIDGE_SESSION=${tag}-other`);
        assert.ok(others.length >= 2, 'the decoy session runs');
        const leader: Leader = { pid: tree.pid ?? 0, startTime: startTime(tree.pid ?? 0) };
        const outcome = await localRunner(shell.argv)(controlArgv('terminate', tag, leader, '400'), 20_000);
        assert.ok(outcome.ran);
        const report = parseControlReport(outcome.stdout);
        assert.ok(report !== null, `report: ${outcome.stdout} ${outcome.stderr}`);
        assert.equal(report.fields.leader, 'ok');
        assert.equal(report.fields.left, '0');
        assert.ok(Number(report.fields.killed) >= 1, 'the HUP-ignoring shell needed SIGKILL');
        await waitUntil('every marked process gone', () => marked.every((p) => !alive(p)), 3000);
        assert.ok(!alive(leader.pid));
        assert.ok(others.every(alive), 'the other session is untouched');
        assert.ok(alive(bystander.pid ?? 0), 'an unrelated process is untouched');
      } finally {
        killQuietly([...pidsWithEnv(`PODBRIDGE_SESSION=${tag}`), ...sessionMembers(tree.pid ?? 0), ...sessionMembers(decoy.pid ?? 0), bystander.pid ?? 0]);
      }
    });
  }

  it('finds the main process by the marker when no PID report came', async () => {
    const tag = `m${process.pid}`;
    const ready = path.join(tmp, `${tag}.ready`);
    const tree = startTree(tag, 'sleep 1011 & echo ready > "$READY"; wait', { READY: ready });
    try {
      await waitUntil('tree ready', () => fs.existsSync(ready), 10_000);
      const outcome = await localRunner(['/bin/sh'])(controlArgv('terminate', tag, null, '400'), 20_000);
      const report = outcome.ran ? parseControlReport(outcome.stdout) : null;
      assert.equal(report?.fields.leader, 'marker');
      await waitUntil('leader gone', () => !alive(tree.pid ?? 0), 3000);
    } finally {
      killQuietly(pidsWithEnv(`PODBRIDGE_SESSION=${tag}`));
    }
  });

  it('never takes a reused PID for the main process (start time checked)', async () => {
    const tag = `r${process.pid}`;
    const ready = path.join(tmp, `${tag}.ready`);
    const tree = startTree(tag, 'echo ready > "$READY"; exec sleep 1012', { READY: ready });
    try {
      await waitUntil('tree ready', () => fs.existsSync(ready), 10_000);
      const wrong: Leader = { pid: tree.pid ?? 0, startTime: '1' };
      const outcome = await localRunner(['/bin/sh'])(controlArgv('signal', tag, wrong, 'TERM'), 10_000);
      assert.equal(outcome.ran && parseControlReport(outcome.stdout)?.fields.result, 'no-leader');
      assert.ok(alive(tree.pid ?? 0));
    } finally {
      killQuietly(pidsWithEnv(`PODBRIDGE_SESSION=${tag}`));
    }
  });

  it('signal: to the main process group (as sshd\'s killpg), not to processes in groups of their own', async () => {
    const tag = `s${process.pid}`;
    const ready = path.join(tmp, `${tag}.ready`);
    const got = path.join(tmp, `${tag}.got`);
    const child = (name: string) => `sh -c 'trap "echo ${name} >> \\"$GOT\\"; exit 0" USR1; sleep 1013 & wait'`;
    const tree = startTree(tag, `trap 'echo main >> "$GOT"' USR1; ${child('same-group')} & setsid ${child('own-session')} & echo ready > "$READY"; while :; do sleep 0.05; done`, {
      READY: ready,
      GOT: got,
    });
    try {
      await waitUntil('tree ready', () => fs.existsSync(ready), 10_000);
      await sleep(200); // the children set their traps
      const leader: Leader = { pid: tree.pid ?? 0, startTime: startTime(tree.pid ?? 0) };
      for (const shell of SHELLS) {
        fs.rmSync(got, { force: true });
        const outcome = await localRunner(shell.argv)(controlArgv('signal', tag, leader, 'USR1'), 10_000);
        const report = outcome.ran ? parseControlReport(outcome.stdout) : null;
        assert.equal(report?.fields.result, 'sent', `${shell.name}: ${outcome.ran ? outcome.stdout + outcome.stderr : ''}`);
        assert.equal(report?.fields.to, 'group');
        await waitUntil(`${shell.name}: trap ran`, () => fs.existsSync(got) && fs.readFileSync(got, 'utf8').includes('main'), 3000);
        await sleep(200);
        const lines = fs.readFileSync(got, 'utf8').trim().split('\n').sort();
        // The same-group child traps once, on the first shell's signal, then exits.
        assert.ok(lines.includes('main') && !lines.includes('own-session'), `${shell.name}: ${lines.join(',')}`);
        if (shell === SHELLS[0]) assert.ok(lines.includes('same-group'), `${shell.name}: ${lines.join(',')}`);
      }
    } finally {
      killQuietly([...pidsWithEnv(`PODBRIDGE_SESSION=${tag}`), ...sessionMembers(tree.pid ?? 0)]);
    }
  });

  it('signal: reaches the group of a main process that already exited (a job holding the output open)', async () => {
    const tag = `g${process.pid}`;
    const ready = path.join(tmp, `${tag}.ready`);
    const tree = startTree(tag, 'sleep 1014 & echo ready > "$READY"; sleep 0.5', { READY: ready });
    try {
      await waitUntil('started', () => fs.existsSync(ready), 10_000);
      const startTimeWas = startTime(tree.pid ?? 0);
      // Gone means reaped, not only exited: a zombie still has /proc/PID with its start time, and
      // the control script rightly finds it as the leader (leader=ok, the group signalled all the
      // same). Under load the test's own process reaps it late (loaded run 10 of issue 16).
      await waitUntil('main process reaped, job running', () => fs.existsSync(ready) && !fs.existsSync(`/proc/${tree.pid ?? 0}`), 10_000);
      const job = pidsWithEnv(`PODBRIDGE_SESSION=${tag}`);
      assert.equal(job.length, 1);
      const outcome = await localRunner(['/bin/sh'])(controlArgv('signal', tag, { pid: tree.pid ?? 0, startTime: startTimeWas }, 'TERM'), 10_000);
      const report = outcome.ran ? parseControlReport(outcome.stdout) : null;
      assert.deepEqual([report?.fields.result, report?.fields.to, report?.fields.leader], ['sent', 'group', 'group-only']);
      await waitUntil('job ended', () => !alive(job[0] ?? 0), 3000);
    } finally {
      killQuietly(pidsWithEnv(`PODBRIDGE_SESSION=${tag}`));
    }
  });

  it('terminate: finds unmarked leftovers of a main process that already exited, by its session', async () => {
    const tag = `x${process.pid}`;
    const ready = path.join(tmp, `${tag}.ready`);
    const tree = startTree(tag, 'env -i sleep 1021 & echo ready > "$READY"; sleep 0.3', { READY: ready });
    try {
      await waitUntil('started', () => fs.existsSync(ready), 10_000);
      const startTimeWas = startTime(tree.pid ?? 0);
      await waitUntil('main process exited', () => !alive(tree.pid ?? 0), 5000);
      // The exiting shell can linger a moment (not yet reaped); wait for the session to settle.
      await waitUntil('only the unmarked job left in the session', () => sessionMembers(tree.pid ?? 0).length === 1, 5000);
      const left = sessionMembers(tree.pid ?? 0);
      const outcome = await localRunner(['/bin/sh'])(controlArgv('terminate', tag, { pid: tree.pid ?? 0, startTime: startTimeWas }, '300'), 10_000);
      const report = outcome.ran ? parseControlReport(outcome.stdout) : null;
      assert.deepEqual([report?.fields.found, report?.fields.left, report?.fields.leader], ['1', '0', 'gone']);
      await waitUntil('job ended', () => !alive(left[0] ?? 0), 3000);
    } finally {
      killQuietly(sessionMembers(tree.pid ?? 0));
    }
  });

  it('is POSIX: no bashisms, checked by dash -n and, where present, busybox sh -n', () => {
    assert.equal(spawnSync('dash', ['-n', '-c', CONTROL_SCRIPT]).status, 0);
    if (SHELLS.some((s) => s.name === 'busybox sh')) assert.equal(spawnSync('busybox', ['sh', '-n', '-c', CONTROL_SCRIPT]).status, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('PID report on stdout', () => {
  let wss: WebSocketServer;
  let url: string;
  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => PROTOCOL_V5 });
    await new Promise((r) => wss.once('listening', r));
    const addr = wss.address();
    if (addr === null || typeof addr === 'string') throw new Error('no TCP address');
    url = `ws://127.0.0.1:${addr.port}`;
  });
  after(() => new Promise<void>((r) => wss.close(() => r())));

  /** A stream whose peer we drive by hand, with a control that records what it was told. */
  async function pair(): Promise<{ stream: ExecStream; peer: WebSocket; leaders: Array<Leader | null>; received: Buffer[] }> {
    const leaders: Array<Leader | null> = [];
    const control: ProcessControl = { setLeader: (l) => void leaders.push(l), signal: () => {}, terminateTree: async () => {} };
    const peerReady = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
    const ws = new WebSocket(url, [PROTOCOL_V5]);
    await new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    ws.removeAllListeners();
    const stream = new ExecStream({ transport: new WebSocketTransport(ws, 'v5'), words: kubernetesExecWords({ namespace: 'n', pod: 'p', container: 'c' }), tty: null, control, log: silentLogger(), pidReport: true });
    const peer = await peerReady;
    const received: Buffer[] = [];
    peer.on('message', (d: Buffer) => received.push(d));
    return { stream, peer, leaders, received };
  }

  const out = (text: string | Buffer) => Buffer.concat([Buffer.from([1]), Buffer.from(text)]);
  const done = (p: WebSocket) => p.send(Buffer.concat([Buffer.from([3]), Buffer.from('{"metadata":{},"status":"Success"}')]), () => p.close(1000));

  function readAll(stream: ExecStream): Promise<string> {
    return new Promise((resolve) => {
      let text = '';
      stream.stdout.on('data', (d: Buffer) => (text += d.toString('latin1')));
      stream.stdout.on('end', () => resolve(text));
    });
  }

  it('strips the report even when split over frames, and holds stdin until it is seen', async () => {
    const { stream, peer, leaders, received } = await pair();
    const text = readAll(stream);
    stream.stdin.write('typed early');
    await sleep(100);
    assert.equal(received.filter((f) => f[0] === 0).length, 0, 'stdin held back until the report');
    peer.send(out(''));
    peer.send(out('\x1b]podbridge-'));
    peer.send(out('pid;4242;9'));
    peer.send(out('876\x07hello '));
    peer.send(out('world\n'));
    await waitUntil('stdin released', () => received.some((f) => f[0] === 0), 2000);
    done(peer);
    assert.equal(await text, 'hello world\n');
    assert.deepEqual(leaders, [{ pid: 4242, startTime: '9876' }]);
    assert.deepEqual((await stream.exited), { kind: 'code', code: 0 });
  });

  it('passes output through untouched when it does not start with a report', async () => {
    const { stream, peer, leaders } = await pair();
    const text = readAll(stream);
    peer.send(out('\x1b]0;a title\x07'));
    peer.send(out('rest'));
    done(peer);
    assert.equal(await text, '\x1b]0;a title\x07rest');
    assert.deepEqual(leaders, [null]);
  });
});

// ---------------------------------------------------------------------------------------------

const alice = testIdentity('alice');

const podTarget = (name: string): Target => ({ raw: name, namespace: null, ref: { kind: 'pod', name }, container: null });

function logSink(): { logs: Array<Record<string, unknown>>; stream: Writable } {
  const logs: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logs, stream };
}

describe('kubernetes backend lifecycle (fake kube-apiserver)', () => {
  let fake: FakeKubeApiServer;
  let backend: Backend;
  let kubeconfig: string;
  const sink = logSink();
  const log = createLogger('debug', sink.stream);
  const ctx = { identity: alice, log };
  let podN = 0;

  /** A fresh pod per test, so the container's process list is the test's own. */
  function newPod(): string {
    const name = `lc-${++podN}`;
    fake.addPod({ namespace: 'team-a', name, containers: [{ name: 'app' }] });
    return name;
  }
  const procs = (pod: string) => fake.containerProcesses('team-a', pod, 'app');

  async function make(extra: Partial<KubernetesBackendOptions> = {}): Promise<Backend> {
    return createKubernetesBackend({ kubeconfig, terminateGraceMs: 500, ...extra }, log);
  }

  /** Output so far, as text. */
  function capture(proc: RemoteProcess): { text: () => string } {
    let text = '';
    proc.stdout.on('data', (d: Buffer) => (text += d.toString('latin1')));
    proc.stderr?.on('data', (d: Buffer) => (text += d.toString('latin1')));
    return { text: () => text };
  }

  before(async () => {
    fake = await FakeKubeApiServer.start();
    fake.addPod({ namespace: 'team-a', name: 'distroless', containers: [{ name: 'app', noShell: true }] });
    kubeconfig = path.join(tmp, 'kubeconfig');
    fake.writeKubeconfig(kubeconfig, { namespace: 'team-a' });
    backend = await make();
  });
  after(async () => {
    await backend.close();
    await fake.stop();
  });

  const spec = (command: string | null, tty = false): ProcessSpec => ({ command, tty: tty ? { term: 'xterm', cols: 80, rows: 24 } : null, env: {} });

  it('terminate(): every process the session started is gone, HUP-ignoring ones included', async () => {
    const pod = newPod();
    const proc = await backend.open(podTarget(pod), spec(`sleep 1000 & (sleep 1001 &); sh -c 'trap "" HUP; sleep 1002' & echo ready; wait`), ctx);
    const out = capture(proc);
    await waitUntil('ready', () => out.text().includes('ready'), 10_000);
    assert.equal(out.text(), 'ready\n', 'the PID report never reaches the output');
    // `ready` is printed while the background jobs may still be forking: wait for all five.
    await waitUntil("all five processes running", () => procs(pod).length >= 5, 10_000);
    const started = Date.now();
    await proc.terminate('client went away');
    assert.ok(Date.now() - started >= 400, 'SIGKILL came after the grace period');
    await waitUntil(`container empty (left: ${procs(pod).join(' ')})`, () => procs(pod).length === 0, 5000);
    const ended = sink.logs.find((l) => l.msg === 'session processes ended' && l.pod === pod);
    assert.ok(ended, 'the cleanup is logged');
    assert.equal(ended.leader, 'ok');
    assert.equal(ended.left, 0);
  });

  it('terminate() with a TTY: a login shell with a background job', async () => {
    const pod = newPod();
    const proc = await backend.open(podTarget(pod), spec(null, true), ctx);
    const out = capture(proc);
    proc.stdin.write('sleep 1000 &\necho ok-$((40+2))\n');
    await waitUntil('shell answered', () => out.text().includes('ok-42'), 10_000);
    assert.ok(!out.text().includes('podbridge-pid'), 'no PID report in the terminal');
    await proc.terminate('client went away');
    await waitUntil(`container empty (left: ${procs(pod).join(' ')})`, () => procs(pod).length === 0, 5000);
  });

  it('signals reach the main process; a death by a signal the client sent is reported as that signal', async () => {
    const pod = newPod();
    const proc = await backend.open(podTarget(pod), spec(`trap 'echo got-usr1' USR1; trap 'echo got-int' INT; echo ready; while :; do sleep 0.1; done`), ctx);
    const out = capture(proc);
    await waitUntil('ready', () => out.text().includes('ready'), 10_000);
    proc.signal('USR1');
    await waitUntil('USR1 trap ran', () => out.text().includes('got-usr1'), 10_000);
    proc.signal('INT');
    await waitUntil('INT trap ran', () => out.text().includes('got-int'), 10_000);
    proc.signal('TERM');
    assert.deepEqual(await proc.exited, { kind: 'signal', signal: 'TERM', coreDumped: false });
  });

  it('an exit code of 128+N stays an exit code when nobody sent N', async () => {
    const pod = newPod();
    const proc = await backend.open(podTarget(pod), spec('exit 130'), ctx);
    proc.stdin.end();
    capture(proc);
    assert.deepEqual(await proc.exited, { kind: 'code', code: 130 });
  });

  it('names a container that restarted mid-session', async () => {
    const pod = newPod();
    const proc = await backend.open(podTarget(pod), spec('echo up; sleep 1000'), ctx);
    const out = capture(proc);
    await waitUntil('up', () => out.text().includes('up'), 10_000);
    fake.updatePod('team-a', pod, { containers: [{ name: 'app', state: { terminated: { reason: 'Error', exitCode: 1 } } }] });
    fake.updatePod('team-a', pod, { containers: [{ name: 'app' }], restartCount: 1 });
    const exit = await proc.exited;
    assert.equal(exit.kind, 'error');
    assert.equal(exit.kind === 'error' && exit.error.message, `container "app" in pod "${pod}" in namespace "team-a" restarted; the session ended with it`);
  });

  it('names a container that stopped mid-session', async () => {
    const pod = newPod();
    const proc = await backend.open(podTarget(pod), spec('echo up; sleep 1000'), ctx);
    const out = capture(proc);
    await waitUntil('up', () => out.text().includes('up'), 10_000);
    fake.updatePod('team-a', pod, { containers: [{ name: 'app', state: { terminated: { reason: 'OOMKilled', exitCode: 137 } } }] });
    const exit = await proc.exited;
    assert.equal(exit.kind === 'error' && exit.error.message, `container "app" in pod "${pod}" in namespace "team-a" stopped (terminated: OOMKilled, exit code 137); the session ended with it`);
  });

  it('a hung exec stream ends the session (keepalive), and its processes are then cleaned up', async () => {
    const pod = newPod();
    const quick = await make({ timings: { keepaliveIntervalMs: 100, keepaliveTimeoutMs: 600 } });
    try {
      const proc = await quick.open(podTarget(pod), spec('echo ready; sleep 1000'), ctx);
      const out = capture(proc);
      await waitUntil('ready', () => out.text().includes('ready'), 10_000);
      fake.pauseExecStreams();
      const exit = await proc.exited;
      fake.resumeExecStreams();
      assert.equal(exit.kind === 'error' && exit.error.code, 'stream-lost');
      assert.match(exit.kind === 'error' ? exit.error.message : '', /lost before it reported an exit status \(no answer to keepalives for 0\.6 s\)$/);
      await waitUntil(`cleaned up after the loss (left: ${procs(pod).join(' ')})`, () => procs(pod).length === 0, 10_000);
    } finally {
      await quick.close();
    }
  });

  it('API server down mid-session: the session ends, output kept; the cleanup waits for it to come back', async () => {
    const pod = newPod();
    const patient = await make({ cleanupRetryDelaysMs: [300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300, 300] });
    try {
      const proc = await patient.open(podTarget(pod), spec('seq 1 3000; echo printed; sleep 1000'), ctx);
      const out = capture(proc);
      await waitUntil('printed', () => out.text().includes('printed'), 10_000);
      fake.stopListening();
      assert.ok(fake.dropConnections() >= 1);
      const exit = await proc.exited;
      assert.equal(exit.kind === 'error' && exit.error.code, 'stream-lost');
      assert.ok(out.text().startsWith(Array.from({ length: 3000 }, (_, i) => `${i + 1}\n`).join('')), 'every line received before the fault');
      await assert.rejects(patient.open(podTarget(pod), spec('true'), ctx), /cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:\d+: connection refused/);
      await sleep(800);
      assert.ok(procs(pod).length > 0, 'nothing could kill them while the API server was down');
      await fake.listenAgain();
      await waitUntil(`cleaned up once the API server is back (left: ${procs(pod).join(' ')})`, () => procs(pod).length === 0, 10_000);
      const again = await patient.open(podTarget(pod), spec('echo back'), ctx);
      again.stdin.end();
      const text = capture(again);
      assert.deepEqual(await again.exited, { kind: 'code', code: 0 });
      assert.equal(text.text(), 'back\n');
    } finally {
      await fake.listenAgain();
      await patient.close();
    }
  });

  it('a container without /bin/sh: the log says the cleanup could not be guaranteed', async () => {
    const { execScriptRunner } = await import('../../src/backends/kubernetes/control-exec.ts');
    const { KubeApiClient } = await import('../../src/backends/kubernetes/api/client.ts');
    const { loadKubeconfig } = await import('../../src/backends/kubernetes/api/kubeconfig.ts');
    const loaded = loadKubeconfig({ kubeconfig });
    const api = new KubeApiClient(loaded.kc, { server: loaded.server, contextName: loaded.contextName });
    const target = { namespace: 'team-a', pod: 'distroless', container: 'app' };
    const clog = log.child({ test: 'no-shell' });
    const control = execProcessControl({ graceMs: 100, retryDelaysMs: [], shutdown: new AbortController().signal, track: () => {} })({
      target,
      sessionTag: 'x',
      log: clog,
      run: execScriptRunner(api, {}, target, clog),
    });
    control.setLeader(null);
    await control.terminateTree('client went away');
    const line = sink.logs.find((l) => l.test === 'no-shell' && l.msg === 'process cleanup could not be guaranteed');
    assert.ok(line, 'warned');
    assert.equal(line.level, 40);
    assert.match(String(line.why), /has no \/bin\/sh/);
  });
});

/**
 * The Kubernetes backend end to end against the fake kube-apiserver (HTTPS, bearer tokens, RBAC
 * denials, exec over WebSocket with local processes as containers): resolution, every
 * user-facing error, exec v5, SPDY and v4 with the order between them, TTY, stdin EOF and backpressure.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend, Exit, ProcessSpec, RemoteProcess } from '../../src/backends/backend.ts';
import { createKubernetesBackend, type KubernetesBackendOptions } from '../../src/backends/kubernetes/index.ts';
import { isBridgeError, type ErrorCode } from '../../src/errors.ts';
import { testIdentity } from '../helpers/identity.ts';
import { alive } from '../helpers/processes.ts';
import { waitUntil } from '../helpers/wait.ts';
import { silentLogger } from '../../src/log.ts';
import type { Target, TargetRef } from '../../src/target.ts';
import {
  DEFAULT_EXEC_PROTOCOLS,
  DEFAULT_SPDY_PROTOCOLS,
  FakeKubeApiServer,
  V1_PROTOCOL,
  V2_PROTOCOL,
  V3_PROTOCOL,
  V4_PROTOCOL,
  V5_PROTOCOL,
} from '../fixtures/kube-apiserver/index.ts';

const log = silentLogger();
const alice = testIdentity('alice');
const ctx = { identity: alice, log };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'podbridge-k8s-test-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function target(ref: TargetRef, namespace: string | null = null, container: string | null = null): Target {
  return { raw: `${namespace ?? ''}.${ref.name}`, namespace, ref, container };
}
const pod = (name: string, namespace: string | null = null, container: string | null = null) =>
  target({ kind: 'pod', name }, namespace, container);

const exec = (command: string | null, env: Record<string, string> = {}): ProcessSpec => ({ command, tty: null, env });

function collect(stream: NodeJS.ReadableStream | null): Promise<Buffer> {
  if (stream === null) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

interface Finished {
  stdout: string;
  stderr: string;
  exit: Exit;
}

async function finish(proc: RemoteProcess, input?: string | Buffer): Promise<Finished> {
  const out = collect(proc.stdout);
  const err = collect(proc.stderr);
  if (input !== undefined) proc.stdin.write(input);
  proc.stdin.end();
  const [stdout, stderr] = await Promise.all([out, err]);
  return { stdout: stdout.toString(), stderr: stderr.toString(), exit: await proc.exited };
}

async function writeAll(stream: NodeJS.WritableStream, data: Buffer, chunk = 32 * 1024): Promise<void> {
  for (let i = 0; i < data.length; i += chunk) {
    if (!stream.write(data.subarray(i, i + chunk))) await new Promise((r) => stream.once('drain', r));
  }
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isBridgeError(err), `not a BridgeError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
}

function errorExit(exit: Exit): { code: ErrorCode; message: string } {
  assert.equal(exit.kind, 'error', `expected an error exit, got ${JSON.stringify(exit)}`);
  if (exit.kind !== 'error') throw new Error('unreachable');
  return { code: exit.error.code, message: exit.error.message };
}

/** A producer whose output nobody reads is held (bounded buffers), and every byte arrives later. */
async function assertBackpressure(backend: Backend, fake: FakeKubeApiServer, size: number): Promise<void> {
  const proc = await backend.open(pod('web-1'), exec(`head -c ${size} /dev/zero`), ctx);
  const record = fake.execs.at(-1);
  let exited = false;
  void proc.exited.then(() => (exited = true));
  await sleep(1500);
  const pid = record?.pid ?? null;
  assert.ok(pid !== null && alive(pid), 'the producer is held, not finished');
  assert.ok(!exited);
  assert.ok(proc.stdout.readableLength <= 512 * 1024, `buffered ${proc.stdout.readableLength} bytes`);
  let total = 0;
  proc.stdout.on('data', (c: Buffer) => (total += c.length));
  await new Promise((r) => proc.stdout.once('end', r));
  assert.equal(total, size);
  assert.deepEqual(await proc.exited, { kind: 'code', code: 0 });
}

async function backendFor(fake: FakeKubeApiServer, name: string, extra: Partial<KubernetesBackendOptions> = {}, kc: { namespace?: string; token?: string } = { namespace: 'team-a' }): Promise<Backend> {
  const file = path.join(tmp, `${name}.kubeconfig`);
  fake.writeKubeconfig(file, kc);
  return createKubernetesBackend({ kubeconfig: file, ...extra }, log);
}

describe('kubernetes backend (fake kube-apiserver)', () => {
  let fake: FakeKubeApiServer;
  let backend: Backend;

  before(async () => {
    fake = await FakeKubeApiServer.start();
    fake.addPod({ namespace: 'team-a', name: 'web-1', containers: [{ name: 'app' }, { name: 'sidecar' }] });
    fake.addPod({
      namespace: 'team-a',
      name: 'annotated',
      annotations: { 'kubectl.kubernetes.io/default-container': 'sidecar' },
      containers: [{ name: 'app' }, { name: 'sidecar' }],
    });
    fake.addPod({ namespace: 'team-a', name: 'starting', phase: 'Pending', containers: [{ name: 'app' }] });
    fake.addPod({ namespace: 'team-a', name: 'done', phase: 'Succeeded', containers: [{ name: 'app' }] });
    fake.addPod({ namespace: 'team-a', name: 'crashy', containers: [{ name: 'app', state: { waiting: 'CrashLoopBackOff' } }] });
    fake.addPod({
      namespace: 'team-a',
      name: 'exited',
      containers: [{ name: 'app' }, { name: 'job', state: { terminated: { reason: 'Error', exitCode: 2 } } }],
    });
    fake.addPod({ namespace: 'team-a', name: 'distroless', containers: [{ name: 'app', noShell: true }] });
    fake.addPod({ namespace: 'team-b', name: 'db-0', containers: [{ name: 'postgres' }] });
    fake.addWorkload({ kind: 'Deployment', namespace: 'team-a', name: 'web', matchLabels: { app: 'web' } });
    fake.addPod({ namespace: 'team-a', name: 'web-7d9f-pending', phase: 'Pending', labels: { app: 'web' }, containers: [{ name: 'app' }] });
    fake.addPod({ namespace: 'team-a', name: 'web-7d9f-running', labels: { app: 'web' }, containers: [{ name: 'app' }] });
    fake.addWorkload({ kind: 'Deployment', namespace: 'team-a', name: 'idle', matchLabels: { app: 'idle' } });
    fake.addPod({ namespace: 'team-a', name: 'idle-1', phase: 'Pending', labels: { app: 'idle' }, containers: [{ name: 'app' }] });
    fake.addWorkload({ kind: 'StatefulSet', namespace: 'team-b', name: 'db', matchLabels: { app: 'db' } });
    fake.addPod({ namespace: 'team-b', name: 'db-1', labels: { app: 'db' }, containers: [{ name: 'postgres' }] });
    backend = await backendFor(fake, 'main');
  });

  after(async () => {
    await backend.close();
    await fake.stop();
  });

  describe('exec', () => {
    it('describes where it serves from', () => {
      assert.match(backend.describe(), /^kubernetes: https:\/\/127\.0\.0\.1:\d+ \(context "fake" from .*main\.kubeconfig\), default namespace "team-a"$/);
    });

    it('passes exit codes 0, 1, 3 and 127 through', async () => {
      for (const [command, code] of [['true', 0], ['false', 1], ['exit 3', 3], ['no-such-command-podbridge', 127]] as const) {
        const r = await finish(await backend.open(pod('web-1'), exec(command), ctx));
        assert.deepEqual(r.exit, { kind: 'code', code }, command);
      }
    });

    it('keeps stdout and stderr apart and does not split the command on spaces', async () => {
      const r = await finish(await backend.open(pod('web-1'), exec(`printf '%s|' a "b  c"; echo oops >&2`), ctx));
      assert.equal(r.stdout, 'a|b  c|');
      assert.equal(r.stderr, 'oops\n');
      assert.deepEqual(r.exit, { kind: 'code', code: 0 });
      const record = fake.execs.at(-1);
      assert.equal(record?.protocol, 'v5.channel.k8s.io');
      assert.deepEqual([record?.stdin, record?.stdout, record?.stderr, record?.tty], [true, true, true, false]);
      assert.equal(record?.container, 'app');
    });

    it('delivers the environment through the command, values untouched', async () => {
      const env = { GREETING: `it's "$HOME" \`x\` ; rm -rf /`, LANG: 'C.UTF-8' };
      const r = await finish(await backend.open(pod('web-1'), exec('printf "%s|%s" "$GREETING" "$LANG"', env), ctx));
      assert.equal(r.stdout, `${env.GREETING}|C.UTF-8`);
    });

    it('delivers stdin EOF over v5: wc -c counts 10 MiB exactly', async () => {
      const proc = await backend.open(pod('web-1'), exec('wc -c'), ctx);
      const out = collect(proc.stdout);
      await writeAll(proc.stdin, Buffer.alloc(10 * 1024 * 1024, 0x61));
      proc.stdin.end();
      assert.equal((await out).toString().trim(), String(10 * 1024 * 1024));
      assert.deepEqual(await proc.exited, { kind: 'code', code: 0 });
    });

    it('runs a login shell when there is no command', async () => {
      const r = await finish(await backend.open(pod('web-1'), exec(null), ctx), 'echo "shell:$0"; exit 7\n');
      assert.match(r.stdout, /^shell:(bash|\/bin\/sh)$/m);
      assert.deepEqual(r.exit, { kind: 'code', code: 7 });
    });

    it('with a TTY: TERM set, stderr not requested, the first size seen at once, resizes live', async () => {
      const tty = { term: 'xterm-256color', cols: 100, rows: 30 };
      const proc = await backend.open(pod('web-1'), { command: 'printf "%s\\n" "$TERM"; stty size; read line; stty size', tty, env: {} }, ctx);
      assert.equal(proc.stderr, null);
      const record = fake.execs.at(-1);
      assert.deepEqual([record?.tty, record?.stderr], [true, false]);
      let output = '';
      proc.stdout.on('data', (c: Buffer) => (output += c.toString()));
      await waitUntil('the resize to 30x100 in the output', () => output.includes('30 100'), 5_000);
      assert.match(output, /^xterm-256color\r\n30 100\r\n/);
      assert.deepEqual(record?.resizes[0], { cols: 100, rows: 30 });
      // A burst: only sizes that matter reach the server, and the last one always does.
      proc.resize({ cols: 0, rows: 10 });
      for (let cols = 101; cols <= 120; cols++) proc.resize({ cols, rows: 40 });
      proc.stdin.write('\r');
      await waitUntil('the resize to 40x120 in the output', () => /40 120/.test(output), 5_000);
      assert.deepEqual(record?.resizes.at(-1), { cols: 120, rows: 40 });
      assert.ok(!record?.resizes.some((s) => s.cols === 0 || s.rows === 10), 'no zero sizes');
      assert.deepEqual(await proc.exited, { kind: 'code', code: 0 });
    });

    it('stops reading when stdout is not read (backpressure), and loses nothing', async () => {
      await assertBackpressure(backend, fake, 200 * 1024 * 1024);
    });

    it('keeps an idle session alive with keepalives and ends it cleanly', async () => {
      const quick = await backendFor(fake, 'keepalive', { timings: { keepaliveIntervalMs: 50, keepaliveTimeoutMs: 300 } });
      const r = await finish(await quick.open(pod('web-1'), exec('sleep 1; echo still-here'), ctx));
      assert.equal(r.stdout, 'still-here\n');
      assert.deepEqual(r.exit, { kind: 'code', code: 0 });
      await quick.close();
    });

    it('terminate() closes the stream and resolves exited', async () => {
      const proc = await backend.open(pod('web-1'), exec('sleep 30'), ctx);
      const out = collect(proc.stdout);
      await proc.terminate('client went away');
      await proc.terminate('again'); // idempotent
      const exit = errorExit(await proc.exited);
      assert.equal(exit.code, 'stream-lost');
      assert.equal(exit.message, 'session in pod "web-1" in namespace "team-a" was ended by podbridge: client went away');
      await out; // stdout ended
    });

    it('ends the session with the pod: a deleted pod kills the process (137), and the end says why', async () => {
      fake.addPod({ namespace: 'team-a', name: 'doomed', containers: [{ name: 'app' }] });
      const proc = await backend.open(pod('doomed'), exec('sleep 30'), ctx);
      const out = finish(proc);
      await sleep(200);
      fake.deletePod('team-a', 'doomed');
      // The runtime's 137 alone would tell the user nothing (kubernetes-lifecycle.test.ts has more).
      assert.deepEqual(errorExit((await out).exit), { code: 'pod-not-found', message: 'pod "doomed" in namespace "team-a" was deleted; the session ended with it' });
    });

    it('carries per-identity headers on every request, the exec included', async () => {
      const impersonating = await backendFor(fake, 'impersonate', {
        requestHeaders: (id) => ({ 'Impersonate-User': id.name, 'Impersonate-Group': ['devs', 'system:authenticated'] }),
      });
      const before = fake.requests.length;
      const r = await finish(await impersonating.open(target({ kind: 'deployment', name: 'web' }), exec('true'), ctx));
      assert.deepEqual(r.exit, { kind: 'code', code: 0 });
      const mine = fake.requests.slice(before);
      assert.ok(mine.length >= 3);
      for (const req of mine) {
        assert.equal(req.user, 'alice', `${req.method} ${req.path}`);
        assert.deepEqual(req.groups.filter((g) => g === 'devs'), ['devs']);
      }
      assert.ok(mine.some((req) => req.path.endsWith('/exec')));
      await impersonating.close();
    });

    it('without /bin/sh (v5: a Status after the upgrade) runs a plain command directly, refuses one that needs a shell', async () => {
      const r = await finish(await backend.open(pod('distroless'), exec("printf '%s|' 'a b' c"), ctx));
      assert.deepEqual(r, { stdout: 'a b|c|', stderr: '', exit: { kind: 'code', code: 0 } });
      await assert.rejects(backend.open(pod('distroless'), exec('true; true'), ctx), {
        code: 'no-shell',
        message: 'container "app" in pod "distroless" in namespace "team-a" has no /bin/sh, and this command needs one (pipes, redirections, variables, globs or several commands); run a plain command, or add a shell with kubectl debug',
      });
    });
  });

  describe('protocol order: WebSocket v5, then SPDY/3.1, then WebSocket v4', () => {
    after(() => {
      fake.setExecProtocols([...DEFAULT_EXEC_PROTOCOLS]);
      fake.setSpdyProtocols([...DEFAULT_SPDY_PROTOCOLS]);
    });
    const cases: Array<{ what: string; ws: string[]; spdy: string[]; transport: string; protocol: string; described: string }> = [
      { what: 'a 1.30+ server', ws: [...DEFAULT_EXEC_PROTOCOLS], spdy: [...DEFAULT_SPDY_PROTOCOLS], transport: 'websocket', protocol: V5_PROTOCOL, described: 'v5.channel.k8s.io over WebSocket' },
      { what: 'WebSocket v5 refused (before 1.30)', ws: [V4_PROTOCOL], spdy: [...DEFAULT_SPDY_PROTOCOLS], transport: 'spdy', protocol: V4_PROTOCOL, described: 'v4.channel.k8s.io over SPDY/3.1' },
      { what: 'WebSocket v5 refused, SPDY speaks v5', ws: [V4_PROTOCOL], spdy: [V5_PROTOCOL, V4_PROTOCOL], transport: 'spdy', protocol: V5_PROTOCOL, described: 'v5.channel.k8s.io over SPDY/3.1' },
      { what: 'WebSocket v5 and SPDY refused (a proxy strips SPDY)', ws: [V4_PROTOCOL], spdy: [], transport: 'websocket', protocol: V4_PROTOCOL, described: 'v4.channel.k8s.io over WebSocket (WebSocket v5 and SPDY refused)' },
      { what: 'WebSocket v5 refused, SPDY only before v4 (403 on negotiation)', ws: [V4_PROTOCOL], spdy: [V3_PROTOCOL, V2_PROTOCOL], transport: 'websocket', protocol: V4_PROTOCOL, described: 'v4.channel.k8s.io over WebSocket (WebSocket v5 and SPDY refused)' },
    ];
    for (const c of cases) {
      it(`${c.what}: ${c.described}`, async () => {
        fake.setExecProtocols(c.ws);
        fake.setSpdyProtocols(c.spdy);
        const proc = await backend.open(pod('web-1'), exec('echo hi; exit 3'), ctx);
        assert.equal((proc as RemoteProcess & { protocol?: string }).protocol, c.described);
        assert.equal(proc.canCloseStdin, c.described !== 'v4.channel.k8s.io over WebSocket (WebSocket v5 and SPDY refused)');
        const r = await finish(proc);
        assert.deepEqual(r, { stdout: 'hi\n', stderr: '', exit: { kind: 'code', code: 3 } });
        assert.deepEqual([fake.execs.at(-1)?.transport, fake.execs.at(-1)?.protocol], [c.transport, c.protocol]);
      });
    }

    it('a refusal of the exec itself (RBAC, no such pod) is reported from the first attempt, not retried over SPDY', async () => {
      fake.setExecProtocols([V4_PROTOCOL]);
      fake.setSpdyProtocols([...DEFAULT_SPDY_PROTOCOLS]);
      const before = fake.requests.length;
      await rejectsWith(backend.open(pod('web-1', null, 'nope'), exec('true'), ctx), 'container-not-found', /container "nope" not found in pod "web-1"/);
      assert.ok(!fake.requests.slice(before).some((r) => r.method === 'POST'), 'no SPDY attempt');
    });
  });

  describe('SPDY/3.1 (WebSocket v5 refused, as before 1.30)', () => {
    before(() => {
      fake.setExecProtocols([V4_PROTOCOL]);
      fake.setSpdyProtocols([...DEFAULT_SPDY_PROTOCOLS]);
    });
    after(() => fake.setExecProtocols([...DEFAULT_EXEC_PROTOCOLS]));

    it('delivers stdin EOF (a FIN on the stdin stream): wc -l and sha256sum see the whole input', async () => {
      const r = await finish(await backend.open(pod('web-1'), exec('wc -l'), ctx), 'a\nb\n');
      assert.deepEqual(r, { stdout: '2\n', stderr: '', exit: { kind: 'code', code: 0 } });
      const data = Buffer.alloc(5 * 1024 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 11)) & 0xff;
      const proc = await backend.open(pod('web-1'), exec('sha256sum'), ctx);
      const out = collect(proc.stdout);
      await writeAll(proc.stdin, data);
      proc.stdin.end();
      const { createHash } = await import('node:crypto');
      assert.equal((await out).toString().split(' ')[0], createHash('sha256').update(data).digest('hex'));
      assert.deepEqual(await proc.exited, { kind: 'code', code: 0 });
      assert.equal(fake.execs.at(-1)?.transport, 'spdy');
    });

    it('stops reading when stdout is not read (backpressure), and loses nothing', async () => {
      await assertBackpressure(backend, fake, 64 * 1024 * 1024);
      assert.equal(fake.execs.at(-1)?.transport, 'spdy');
    });

    it('resizes a TTY over the resize stream (JSON lines)', async () => {
      const proc = await backend.open(pod('web-1'), { command: 'stty size; read x; stty size', tty: { term: 'xterm', cols: 90, rows: 20 }, env: {} }, ctx);
      let output = '';
      proc.stdout.on('data', (d: Buffer) => (output += d.toString()));
      await waitUntil('the resize to 20x90 in the output', () => /20 90/.test(output), 5_000);
      proc.resize({ cols: 132, rows: 43 });
      proc.stdin.write('\r');
      await waitUntil('the resize to 43x132 in the output', () => /43 132/.test(output), 5_000);
      assert.deepEqual(fake.execs.at(-1)?.resizes, [{ cols: 90, rows: 20 }, { cols: 132, rows: 43 }]);
      assert.deepEqual(await proc.exited, { kind: 'code', code: 0 });
    });

    it('reports a failure Status from the error stream, and runs a plain command where there is no /bin/sh', async () => {
      const r = await finish(await backend.open(pod('distroless'), exec('echo direct'), ctx));
      assert.deepEqual(r, { stdout: 'direct\n', stderr: '', exit: { kind: 'code', code: 0 } });
      assert.equal(fake.execs.at(-1)?.transport, 'spdy');
    });

    it('terminate() resets the streams and closes; exited says the bridge ended it', async () => {
      const proc = await backend.open(pod('web-1'), exec('sleep 30'), ctx);
      const out = collect(proc.stdout);
      await proc.terminate('client went away');
      assert.equal(errorExit(await proc.exited).code, 'stream-lost');
      await out;
    });
  });

  describe('v4 fallback', () => {
    before(() => {
      fake.setExecProtocols([V4_PROTOCOL]);
      fake.setSpdyProtocols([]);
    });
    after(() => {
      fake.setExecProtocols([...DEFAULT_EXEC_PROTOCOLS]);
      fake.setSpdyProtocols([...DEFAULT_SPDY_PROTOCOLS]);
    });

    it('still delivers output, stderr and the exit status', async () => {
      const r = await finish(await backend.open(pod('web-1'), exec('echo hi; echo err >&2; exit 4'), ctx));
      assert.equal(fake.execs.at(-1)?.protocol, V4_PROTOCOL);
      assert.deepEqual(r, { stdout: 'hi\n', stderr: 'err\n', exit: { kind: 'code', code: 4 } });
    });

    it('cannot deliver stdin EOF: the stream stays open until terminated (documented limitation)', async () => {
      const proc = await backend.open(pod('web-1'), exec('cat'), ctx);
      const out = collect(proc.stdout);
      proc.stdin.end('data before EOF\n');
      await sleep(500);
      const pid = fake.execs.at(-1)?.pid ?? null;
      assert.ok(pid !== null && alive(pid), 'cat still waits for EOF');
      await proc.terminate('test over');
      assert.equal((await out).toString(), 'data before EOF\n');
      assert.equal(errorExit(await proc.exited).code, 'stream-lost');
    });

    it('explains a bare 403 from a server that speaks neither v5 nor v4', async () => {
      fake.setExecProtocols([V1_PROTOCOL]);
      try {
        await rejectsWith(
          backend.open(pod('web-1'), exec('true'), ctx),
          'forbidden',
          'exec into pod "web-1" in namespace "team-a" was refused with a bare 403: either RBAC denies it, or the server speaks neither v5.channel.k8s.io nor v4.channel.k8s.io',
        );
      } finally {
        fake.setExecProtocols([V4_PROTOCOL]);
      }
    });

    it('resizes a TTY', async () => {
      const proc = await backend.open(pod('web-1'), { command: 'stty size', tty: { term: 'xterm', cols: 90, rows: 20 }, env: {} }, ctx);
      const r = await finish(proc);
      assert.equal(r.stdout, '20 90\r\n');
    });

    it('without /bin/sh (v4: the kubelet upgrades, then reports runc\'s refusal) runs a plain command directly', async () => {
      const r = await finish(await backend.open(pod('distroless'), exec('echo direct'), ctx));
      assert.deepEqual(r, { stdout: 'direct\n', stderr: '', exit: { kind: 'code', code: 0 } });
      await assert.rejects(backend.open(pod('distroless'), exec('echo $HOME'), ctx), { code: 'no-shell' });
    });
  });

  describe('resolution', () => {
    it('uses the named container, the default-container annotation, else the first', async () => {
      await finish(await backend.open(pod('web-1', null, 'sidecar'), exec('true'), ctx));
      assert.equal(fake.execs.at(-1)?.container, 'sidecar');
      await finish(await backend.open(pod('annotated'), exec('true'), ctx));
      assert.equal(fake.execs.at(-1)?.container, 'sidecar');
      await finish(await backend.open(pod('web-1'), exec('true'), ctx));
      assert.equal(fake.execs.at(-1)?.container, 'app');
    });

    it('honours the target namespace over the default', async () => {
      await finish(await backend.open(pod('db-0', 'team-b'), exec('true'), ctx));
      assert.deepEqual([fake.execs.at(-1)?.namespace, fake.execs.at(-1)?.pod], ['team-b', 'db-0']);
    });

    it('picks the running pod of a deployment, as kubectl exec deploy/web does', async () => {
      await finish(await backend.open(target({ kind: 'deployment', name: 'web' }), exec('true'), ctx));
      assert.equal(fake.execs.at(-1)?.pod, 'web-7d9f-running');
      await finish(await backend.open(target({ kind: 'statefulset', name: 'db' }, 'team-b'), exec('true'), ctx));
      assert.equal(fake.execs.at(-1)?.pod, 'db-1');
    });

    it('says when the namespace does not exist', async () => {
      await rejectsWith(backend.open(pod('web-1', 'nope'), exec('true'), ctx), 'namespace-not-found', 'namespace "nope" not found; list namespaces with: kubectl get ns');
    });

    it('says when the pod does not exist', async () => {
      await rejectsWith(
        backend.open(pod('web-9'), exec('true'), ctx),
        'pod-not-found',
        'pod "web-9" not found in namespace "team-a"; list pods with: kubectl get pods -n team-a',
      );
    });

    it('says when the pod is not running, with its phase', async () => {
      await rejectsWith(
        backend.open(pod('starting'), exec('true'), ctx),
        'pod-not-running',
        'pod "starting" in namespace "team-a" is Pending, not Running; wait until it starts (kubectl get pod starting -n team-a)',
      );
      await rejectsWith(
        backend.open(pod('done'), exec('true'), ctx),
        'pod-not-running',
        'pod "done" in namespace "team-a" has completed (phase Succeeded) and cannot run commands; pick a running pod (kubectl get pods -n team-a)',
      );
    });

    it('lists the containers when the named one does not exist', async () => {
      await rejectsWith(
        backend.open(pod('web-1', null, 'nginx'), exec('true'), ctx),
        'container-not-found',
        'container "nginx" not found in pod "web-1" in namespace "team-a"; its containers: app, sidecar',
      );
    });

    it('says why a container is not running', async () => {
      await rejectsWith(
        backend.open(pod('crashy'), exec('true'), ctx),
        'container-not-running',
        'container "app" in pod "crashy" in namespace "team-a" is not running (waiting: CrashLoopBackOff); see: kubectl describe pod crashy -n team-a',
      );
      await rejectsWith(
        backend.open(pod('exited', null, 'job'), exec('true'), ctx),
        'container-not-running',
        'container "job" in pod "exited" in namespace "team-a" is not running (terminated: Error, exit code 2); see: kubectl describe pod exited -n team-a',
      );
    });

    it('says when a workload does not exist or has no running pod', async () => {
      await rejectsWith(
        backend.open(target({ kind: 'deployment', name: 'api' }), exec('true'), ctx),
        'workload-not-found',
        'deployment "api" not found in namespace "team-a"; list them with: kubectl get deployments -n team-a',
      );
      await rejectsWith(
        backend.open(target({ kind: 'deployment', name: 'idle' }), exec('true'), ctx),
        'no-running-pod',
        `deployment "idle" in namespace "team-a" has no running pod (1 pod matches its selector, none is Running); see: kubectl get pods -n team-a -l 'app=idle'`,
      );
      await rejectsWith(
        backend.open(target({ kind: 'job', name: 'migrate' }, 'nope'), exec('true'), ctx),
        'namespace-not-found',
        'namespace "nope" not found; list namespaces with: kubectl get ns',
      );
    });
  });
});

describe('kubernetes backend: access and connection errors', () => {
  it('quotes the RBAC reason when a GET is forbidden', async () => {
    const fake = await FakeKubeApiServer.start({ authorize: (a) => (a.verb === 'get' && a.resource === 'pods' ? '' : true) });
    try {
      fake.addPod({ namespace: 'team-a', name: 'web-1', containers: [{ name: 'app' }] });
      const backend = await backendFor(fake, 'rbac-get');
      await rejectsWith(
        backend.open(pod('web-1'), exec('true'), ctx),
        'forbidden',
        /^Kubernetes denied access: pods "web-1" is forbidden: User "admin" cannot get resource "pods" in API group "" in the namespace "team-a"; ask a cluster admin to grant it$/,
      );
    } finally {
      await fake.stop();
    }
  });

  it('quotes the RBAC reason when exec is forbidden (refused upgrade)', async () => {
    const fake = await FakeKubeApiServer.start({
      authorize: (a) => (a.subresource === 'exec' ? 'no RBAC policy matched' : true),
    });
    try {
      fake.addPod({ namespace: 'team-a', name: 'web-1', containers: [{ name: 'app' }] });
      const backend = await backendFor(fake, 'rbac-exec');
      await rejectsWith(
        backend.open(pod('web-1'), exec('true'), ctx),
        'forbidden',
        /^Kubernetes denied access: pods "web-1" is forbidden: User "admin" cannot (get|create) resource "pods\/exec" in API group "" in the namespace "team-a": no RBAC policy matched; ask a cluster admin to grant it$/,
      );
    } finally {
      await fake.stop();
    }
  });

  it('says the server rejected the credentials (401)', async () => {
    const fake = await FakeKubeApiServer.start();
    try {
      const backend = await backendFor(fake, 'bad-token', {}, { token: 'wrong' });
      await rejectsWith(
        backend.open(pod('web-1'), exec('true'), ctx),
        'unauthorized',
        `the Kubernetes API server at ${fake.url} rejected podbridge's credentials (401 Unauthorized); check the user of context "fake" in the kubeconfig`,
      );
    } finally {
      await fake.stop();
    }
  });

  it('names the server and the TLS reason when the certificate is not trusted', async () => {
    const fake = await FakeKubeApiServer.start();
    try {
      const file = path.join(tmp, 'no-ca.kubeconfig');
      fake.writeKubeconfig(file, {});
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/^\s*certificate-authority-data:.*\n/m, ''));
      const backend = await createKubernetesBackend({ kubeconfig: file }, log);
      await rejectsWith(
        backend.open(pod('web-1'), exec('true'), ctx),
        'tls',
        new RegExp(`^TLS with the Kubernetes API server at ${fake.url.replace(/\./g, '\\.')} failed: .*certificate.*; check certificate-authority`),
      );
    } finally {
      await fake.stop();
    }
  });

  it('says the server cannot be reached (connection refused)', async () => {
    const fake = await FakeKubeApiServer.start();
    const backend = await backendFor(fake, 'gone');
    const url = fake.url;
    await fake.stop();
    await rejectsWith(
      backend.open(pod('web-1'), exec('true'), ctx),
      'api-unreachable',
      `cannot reach the Kubernetes API server at ${url}: connection refused; check --kubeconfig/--context and the network`,
    );
  });

  it('gives up on a server that accepts but never answers', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    const fake = await FakeKubeApiServer.start();
    try {
      const file = path.join(tmp, 'silent.kubeconfig');
      fake.writeKubeconfig(file, {});
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(fake.url, `https://127.0.0.1:${port}`));
      const backend = await createKubernetesBackend({ kubeconfig: file, connectTimeoutMs: 300 }, log);
      await rejectsWith(
        backend.open(pod('web-1'), exec('true'), ctx),
        'api-unreachable',
        `the Kubernetes API server at https://127.0.0.1:${port} did not answer within 0.3 s; check that it is healthy`,
      );
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
      await fake.stop();
    }
  });

  it('reports a connection lost mid-session as stream-lost, never as exit 0', async () => {
    const fake = await FakeKubeApiServer.start();
    fake.addPod({ namespace: 'team-a', name: 'web-1', containers: [{ name: 'app' }] });
    const backend = await backendFor(fake, 'lost');
    const proc = await backend.open(pod('web-1'), exec('echo started; sleep 30'), ctx);
    const out = finish(proc);
    await sleep(300);
    await fake.stop();
    const r = await out;
    assert.equal(r.stdout, 'started\n');
    const exit = errorExit(r.exit);
    assert.equal(exit.code, 'stream-lost');
    assert.match(exit.message, /^connection to pod "web-1" in namespace "team-a" lost before it reported an exit status/);
  });
});

/**
 * ExecStream edge cases a well-behaved API server never produces on demand: a Status split over
 * frames, a Status with no close after it, a peer that stops answering pings, a close without a
 * Status, garbage on the status channel, and the order of resize and stdin frames. The peer is a
 * bare `ws` server speaking raw frames; everything else is tested against the fake API server in
 * kubernetes-backend.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { Exit } from '../../src/backends/backend.ts';
import { ExecProcess as ExecStream, type ExecProcessTimings as ExecStreamTimings } from '../../src/backends/exec/exec-process.ts';
import { kubernetesExecWords } from '../../src/backends/kubernetes/exec-errors.ts';
import { streamOnlyProcessControl } from '../../src/backends/exec/control/process-control.ts';
import { PROTOCOL_V5 } from '../../src/backends/kubernetes/channel/websocket-frames.ts';
import { WebSocketTransport } from '../../src/backends/kubernetes/channel/websocket.ts';
import { silentLogger } from '../../src/log.ts';

const target = { namespace: 'team-a', pod: 'web-1', container: 'app' };
const log = silentLogger();

let wss: WebSocketServer;
let url: string;
before(async () => {
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: false, handleProtocols: () => PROTOCOL_V5 });
  await new Promise((r) => wss.once('listening', r));
  const addr = wss.address();
  if (addr === null || typeof addr === 'string') throw new Error('no TCP address');
  url = `ws://127.0.0.1:${addr.port}`;
});
after(() => new Promise<void>((r) => wss.close(() => r())));

interface Pair {
  stream: ExecStream;
  peer: WebSocket;
  received: Buffer[];
}

async function connect(timings: Partial<ExecStreamTimings> = {}, tty: { cols: number; rows: number } | null = null): Promise<Pair> {
  const peerReady = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const ws = new WebSocket(url, [PROTOCOL_V5]);
  const stream = await new Promise<ExecStream>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => {
      ws.removeAllListeners();
      resolve(
        new ExecStream({
          transport: new WebSocketTransport(ws, 'v5'),
          words: kubernetesExecWords(target),
          tty: tty === null ? null : { term: 'xterm', ...tty },
          control: streamOnlyProcessControl({ target, sessionTag: 't', log }),
          log,
          timings,
        }),
      );
    });
  });
  const peer = await peerReady;
  const received: Buffer[] = [];
  peer.on('message', (data: Buffer) => received.push(data));
  return { stream, peer, received };
}

const frame = (channel: number, text: string) => Buffer.concat([Buffer.from([channel]), Buffer.from(text)]);

function errorOf(exit: Exit): { code: string; message: string } {
  assert.equal(exit.kind, 'error', JSON.stringify(exit));
  if (exit.kind !== 'error') throw new Error('unreachable');
  return { code: exit.error.code, message: exit.error.message };
}

describe('exec stream edge cases', () => {
  it('ignores an empty readiness frame on the status channel and joins a Status split over frames', async () => {
    const { stream, peer } = await connect();
    const status = JSON.stringify({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
    peer.send(Buffer.from([3]));
    peer.send(frame(1, 'out'));
    peer.send(frame(3, status.slice(0, 20)));
    peer.send(frame(3, status.slice(20)));
    peer.close();
    stream.stdout.resume();
    stream.stderr?.resume();
    assert.deepEqual(await stream.exited, { kind: 'code', code: 3 });
  });

  it('ends with the Status even when the server never closes', async () => {
    const { stream, peer } = await connect({ closeAfterStatusMs: 100 });
    peer.send(frame(3, '{"metadata":{},"status":"Success"}'));
    stream.stdout.resume();
    assert.deepEqual(await stream.exited, { kind: 'code', code: 0 });
  });

  it('counts a peer that stops answering pings as lost', async () => {
    const { stream } = await connect({ keepaliveIntervalMs: 50, keepaliveTimeoutMs: 200 });
    stream.stdout.resume();
    assert.deepEqual(errorOf(await stream.exited), {
      code: 'stream-lost',
      message: 'connection to pod "web-1" in namespace "team-a" lost before it reported an exit status (no answer to keepalives for 0.2 s)',
    });
  });

  it('never reports exit 0 for a close without a Status, and still delivers what came before', async () => {
    const { stream, peer } = await connect();
    peer.send(frame(1, 'partial'));
    peer.send(frame(2, 'warn'));
    peer.close(1011, 'kubelet went away');
    const chunks: Buffer[] = [];
    stream.stdout.on('data', (c: Buffer) => chunks.push(c));
    const errChunks: Buffer[] = [];
    stream.stderr?.on('data', (c: Buffer) => errChunks.push(c));
    const exit = await stream.exited;
    assert.equal(Buffer.concat(chunks).toString(), 'partial');
    assert.equal(Buffer.concat(errChunks).toString(), 'warn');
    assert.deepEqual(errorOf(exit), {
      code: 'stream-lost',
      message: 'connection to pod "web-1" in namespace "team-a" lost before it reported an exit status (kubelet went away)',
    });
  });

  it('keeps non-JSON text on the status channel as the failure message', async () => {
    const { stream, peer } = await connect();
    peer.send(frame(3, 'error: something odd happened'));
    peer.close();
    stream.stdout.resume();
    assert.deepEqual(errorOf(await stream.exited), {
      code: 'exec-failed',
      message: 'command in container "app" in pod "web-1" in namespace "team-a" failed: error: something odd happened',
    });
  });

  it('sends the initial size first, keeps a resize ahead of later stdin, and CLOSEs stdin on end', async () => {
    const { stream, peer, received } = await connect({}, { cols: 80, rows: 24 });
    stream.resize({ cols: 0, rows: 50 });
    stream.resize({ cols: 81, rows: 25 });
    stream.resize({ cols: 100, rows: 40 });
    stream.stdin.write('typed');
    stream.stdin.end();
    await new Promise<void>((r) => stream.stdin.once('finish', () => r()));
    await new Promise((r) => setTimeout(r, 50));
    const seen = received.map((b) => (b[0] === 255 ? `close:${b[1]}` : `${b[0]}:${b.subarray(1).toString()}`));
    assert.equal(seen[0], '4:{"Width":80,"Height":24}');
    assert.deepEqual(seen.slice(-2), ['0:typed', 'close:0']);
    assert.equal(seen.at(-3), '4:{"Width":100,"Height":40}');
    assert.ok(!seen.some((s) => s.includes('"Width":0')));
    peer.send(frame(3, '{"status":"Success"}'));
    peer.close();
    stream.stdout.resume();
    assert.deepEqual(await stream.exited, { kind: 'code', code: 0 });
  });

  it('pauses the socket while stdout is unread and resumes when it is read', async () => {
    const { stream, peer } = await connect();
    const chunk = Buffer.alloc(16 * 1024, 1);
    const frames = 1024; // 16 MiB, far more than the socket buffers hold
    for (let i = 0; i < frames; i++) peer.send(Buffer.concat([Buffer.from([1]), chunk]));
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(stream.stdout.readableLength <= 512 * 1024, `buffered ${stream.stdout.readableLength}`);
    assert.ok(peer.bufferedAmount > 0, 'the peer is held back by TCP');
    let total = 0;
    stream.stdout.on('data', (c: Buffer) => (total += c.length));
    peer.send(frame(3, '{"status":"Success"}'));
    peer.close();
    assert.deepEqual(await stream.exited, { kind: 'code', code: 0 });
    await new Promise((r) => setImmediate(r));
    assert.equal(total, frames * chunk.length);
  });
});

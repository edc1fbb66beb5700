/**
 * SPDY/3.1 on the wire, checked against bytes derived by hand from github.com/moby/spdystream's
 * spdy/write.go and read.go (the framing Kubernetes uses) and from node:zlib, an implementation
 * independent of the one we compress with. The client side (our SpdyClientConnection) and the
 * fake kube-apiserver's server side are both held to these bytes, so neither can drift with the
 * other. Frame layouts:
 *   control: 80 03 | type(16) | flags(8) | length(24) | payload
 *   data:    stream id(32, top bit 0) | flags(8) | length(24) | payload
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { SPDY3_HEADER_DICTIONARY } from '../../src/backends/kubernetes/channel/spdy/dictionary.ts';
import {
  FrameParser,
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSynReply,
  encodeSynStream,
  encodeWindowUpdate,
} from '../../src/backends/kubernetes/channel/spdy/frames.ts';
import { HeaderCompressor, HeaderDecompressor, encodeHeaderBlock } from '../../src/backends/kubernetes/channel/spdy/headers.ts';
import { SpdyClientConnection } from '../../src/backends/kubernetes/channel/spdy/connection.ts';
import { SpdyTransport } from '../../src/backends/kubernetes/channel/spdy-transport.ts';
import { FakeKubeApiServer } from '../fixtures/kube-apiserver/index.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** adler32, as zlib puts the dictionary's id in a stream header (RFC 1950). */
function adler32(b: Buffer): number {
  let a = 1;
  let s = 0;
  for (const byte of b) {
    a = (a + byte) % 65521;
    s = (s + a) % 65521;
  }
  return ((s << 16) | a) >>> 0;
}

/** The raw block for {streamtype: [t]} as writeHeaderValueBlock lays it out. */
function streamTypeBlock(t: string): Buffer {
  return Buffer.concat([hex('00000001 0000000a'), Buffer.from('streamtype'), Buffer.from([0, 0, 0, t.length]), Buffer.from(t)]);
}

/** A node:zlib context kept for a whole connection, as spdystream keeps Go's; one block at a time. */
class NodeZlib {
  private readonly z: zlib.Deflate | zlib.Inflate;
  private readonly out: Buffer[] = [];
  constructor(kind: 'deflate' | 'inflate') {
    this.z = kind === 'deflate' ? zlib.createDeflate({ level: 9, dictionary: SPDY3_HEADER_DICTIONARY }) : zlib.createInflate({ dictionary: SPDY3_HEADER_DICTIONARY });
    this.z.on('data', (c: Buffer) => this.out.push(c));
  }
  block(input: Buffer): Promise<Buffer> {
    this.z.write(input);
    return new Promise((resolve) => this.z.flush(zlib.constants.Z_SYNC_FLUSH, () => setImmediate(() => resolve(Buffer.concat(this.out.splice(0))))));
  }
}
const NodeDeflate = class extends NodeZlib {
  constructor() {
    super('deflate');
  }
};
const NodeInflate = class extends NodeZlib {
  constructor() {
    super('inflate');
  }
};

interface RawFrame {
  control: boolean;
  type: number;
  streamId: number;
  flags: number;
  payload: Buffer;
}

/** A reader of frames written independently of frames.ts: only the 8-byte heads. */
class RawReader {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  readonly frames: RawFrame[] = [];
  constructor(socket: net.Socket | tls.TLSSocket) {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      while (this.buf.length >= 8) {
        const len = this.buf.readUInt32BE(4) & 0xffffff;
        if (this.buf.length < 8 + len) break;
        const w = this.buf.readUInt32BE(0);
        const control = (w & 0x80000000) !== 0;
        this.frames.push({
          control,
          type: control ? w & 0xffff : 0,
          streamId: control ? 0 : w,
          flags: this.buf[4] as number,
          payload: this.buf.subarray(8, 8 + len),
        });
        this.buf = this.buf.subarray(8 + len);
      }
      for (const w of this.waiters.splice(0)) w();
    });
  }
  async until(pred: (frames: RawFrame[]) => boolean): Promise<void> {
    while (!pred(this.frames)) await new Promise<void>((r) => this.waiters.push(r));
  }
}

describe('SPDY/3 header compression', () => {
  it('uses the 1423-byte SPDY/3 dictionary (spdystream spdy/dictionary.go)', () => {
    assert.equal(SPDY3_HEADER_DICTIONARY.length, 1423);
    assert.equal(createHash('sha256').update(SPDY3_HEADER_DICTIONARY).digest('hex'), '51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02');
  });

  it('lays out a header block as writeHeaderValueBlock does', () => {
    assert.deepEqual(encodeHeaderBlock([['streamType', ['error']]]), streamTypeBlock('error'));
    assert.deepEqual(encodeHeaderBlock([]), hex('00000000'));
    // Several values of one name are joined by NUL.
    assert.deepEqual(encodeHeaderBlock([['a', ['x', 'y']]]), hex('00000001 00000001 61 00000003 780079'));
  });

  it('compresses with BestCompression and the dictionary: zlib header 78 f9 and the dictionary id, one context for the connection', async () => {
    const c = new HeaderCompressor();
    const first = c.compress([['streamtype', ['error']]]);
    const dictId = Buffer.alloc(4);
    dictId.writeUInt32BE(adler32(SPDY3_HEADER_DICTIONARY));
    assert.deepEqual(first.subarray(0, 6), Buffer.concat([hex('78f9'), dictId]));
    // Every block ends with a sync flush, so the peer can decode it at once.
    assert.deepEqual(first.subarray(-4), hex('0000ffff'));
    const second = c.compress([['streamtype', ['stdin']]]);
    assert.notEqual(second[0], 0x78, 'the second block continues the stream: no new zlib header');
    const inflate = new NodeInflate();
    assert.deepEqual(await inflate.block(first), streamTypeBlock('error'));
    assert.deepEqual(await inflate.block(second), streamTypeBlock('stdin'));
  });

  it('decodes what another zlib writes, block after block on one context', async () => {
    const deflate = new NodeDeflate();
    const d = new HeaderDecompressor();
    assert.deepEqual([...d.decompress(await deflate.block(encodeHeaderBlock([])))], []);
    assert.deepEqual([...d.decompress(await deflate.block(streamTypeBlock('stdout')))], [['streamtype', ['stdout']]]);
  });

  it('decodes a hand-made zlib stream: dictionary header, then a stored block (RFC 1950/1951)', () => {
    const raw = streamTypeBlock('resize');
    const dictId = Buffer.alloc(4);
    dictId.writeUInt32BE(adler32(SPDY3_HEADER_DICTIONARY));
    const len = Buffer.alloc(4);
    len.writeUInt16LE(raw.length, 0);
    len.writeUInt16LE(~raw.length & 0xffff, 2);
    const stream = Buffer.concat([hex('78f9'), dictId, hex('00'), len, raw]);
    assert.deepEqual([...new HeaderDecompressor().decompress(stream)], [['streamtype', ['resize']]]);
  });
});

describe('SPDY/3.1 frames', () => {
  const C = Buffer.from('compressed');
  it('encodes control and data frames byte for byte as spdystream writes them', () => {
    assert.deepEqual(encodeSynStream(1, C), Buffer.concat([hex('80030001 00000014 00000001 00000000 00 00'), C]));
    assert.deepEqual(encodeSynReply(3, C, 1), Buffer.concat([hex('80030002 0100000e 00000003'), C]));
    assert.deepEqual(encodeRstStream(5, 5), hex('80030003 00000008 00000005 00000005'));
    assert.deepEqual(encodeSettings([{ id: 7, value: 1024 }]), hex('80030004 0000000c 00000001 00000007 00000400'));
    assert.deepEqual(encodePing(1), hex('80030006 00000004 00000001'));
    assert.deepEqual(encodeGoAway(7), hex('80030007 00000008 00000007 00000000'));
    assert.deepEqual(encodeWindowUpdate(3, 32768), hex('80030009 00000008 00000003 00008000'));
    assert.deepEqual(encodeData(3, Buffer.alloc(0), 1), hex('00000003 01000000'));
    assert.deepEqual(encodeData(5, Buffer.from('hi')), hex('00000005 00000002 6869'));
  });

  it('parses frames split anywhere, and refuses what spdystream refuses', () => {
    const p = new FrameParser();
    const all = Buffer.concat([encodeData(5, Buffer.from('hello')), encodePing(2), encodeRstStream(1, 5)]);
    for (const b of all) p.push(Buffer.from([b]));
    assert.deepEqual(p.next(), { type: 'data', streamId: 5, flags: 0, data: Buffer.from('hello') });
    assert.deepEqual(p.next(), { type: 'ping', id: 2 });
    assert.deepEqual(p.next(), { type: 'rstStream', streamId: 1, status: 5 });
    assert.equal(p.next(), null);
    const bad = new FrameParser();
    bad.push(hex('80030003 00000008 00000001 00000000'));
    assert.throws(() => bad.next(), /status 0/);
    const goaway = new FrameParser();
    goaway.push(hex('80030007 00000004 00000001'));
    assert.throws(() => goaway.next(), /GOAWAY/);
  });
});

describe('SPDY client connection on the wire', () => {
  let server: net.Server;
  let port = 0;
  before(async () => {
    server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  async function pair(): Promise<{ client: SpdyClientConnection; peer: net.Socket; reader: RawReader; reply: (id: number) => Promise<void> }> {
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const peer = await accepted;
    const reader = new RawReader(peer);
    const deflate = new NodeDeflate();
    const inflate = new NodeInflate();
    const seen = new Set<number>();
    const reply = async (id: number) => {
      // Read (and decompress, to keep the context) every SYN_STREAM up to this one.
      await reader.until((f) => f.some((x) => x.control && x.type === 1 && x.payload.readUInt32BE(0) === id));
      for (const f of reader.frames) {
        if (!f.control || f.type !== 1 || seen.has(f.payload.readUInt32BE(0))) continue;
        seen.add(f.payload.readUInt32BE(0));
        await inflate.block(f.payload.subarray(10));
      }
      const block = await deflate.block(hex('00000000'));
      const frame = Buffer.concat([hex('80030002'), Buffer.from([0, 0, 0, 4 + block.length]), Buffer.from([0, 0, 0, id]), block]);
      peer.write(frame);
    };
    return { client: new SpdyClientConnection(socket, Buffer.alloc(0)), peer, reader, reply };
  }

  it('opens streams in client-go order with odd ids, each after the previous reply, and sends stdin EOF as a FIN', async () => {
    const { client, peer, reader, reply } = await pair();
    const types = ['error', 'stdin', 'stdout', 'stderr'];
    const streams = [];
    const inflate = new NodeInflate();
    for (const [i, t] of types.entries()) {
      const opened = client.openStream(t, [['streamtype', [t]]], 5_000);
      await reply(1 + 2 * i);
      streams.push(await opened);
    }
    const syn = reader.frames.filter((f) => f.control && f.type === 1);
    assert.deepEqual(syn.map((f) => f.payload.readUInt32BE(0)), [1, 3, 5, 7]);
    for (const [i, f] of syn.entries()) {
      assert.deepEqual(f.payload.subarray(4, 10), hex('00000000 0000'), 'no associated stream, priority 0, slot 0');
      assert.deepEqual(await inflate.block(f.payload.subarray(10)), streamTypeBlock(types[i] as string));
    }
    const [error, stdin, stdout, stderr] = streams as [never, never, never, never];
    const transport = new SpdyTransport(client, { error, stdin, stdout, stderr, resize: null }, 'v4.channel.k8s.io');
    const got: string[] = [];
    transport.attach({ data: (s, p) => got.push(`${s}:${p.toString()}`), heard: () => {}, error: () => {}, closed: () => {} });
    await new Promise<void>((r) => transport.writeStdin(Buffer.from('abc'), () => r()));
    await new Promise<void>((r) => transport.endStdin(r));
    await reader.until((f) => f.some((x) => !x.control && x.streamId === 3 && (x.flags & 1) === 1));
    const data = reader.frames.filter((f) => !f.control && f.streamId === 3);
    assert.deepEqual(data.map((f) => [f.flags, f.payload.toString()]), [[0, 'abc'], [1, '']]);
    peer.write(encodeData(5, Buffer.from('out')));
    peer.write(encodeData(1, Buffer.from('{"status":"Success"}')));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(got, ['stdout:out', 'status:{"status":"Success"}']);
    // The server's (even) pings are echoed; ours are odd.
    peer.write(encodePing(2));
    transport.ping();
    await reader.until((f) => f.filter((x) => x.control && x.type === 6).length >= 2);
    assert.deepEqual(reader.frames.filter((x) => x.control && x.type === 6).map((x) => x.payload.readUInt32BE(0)).sort(), [1, 2]);
    // close(): RST_STREAM(CANCEL) on what we did not finish (not stdin), then GOAWAY(0).
    transport.close('done');
    await reader.until((f) => f.some((x) => x.control && x.type === 7));
    const tail = reader.frames.filter((x) => x.control && (x.type === 3 || x.type === 7));
    assert.deepEqual(tail.map((x) => [x.type, x.payload.toString('hex')]), [
      [3, '0000000100000005'],
      [3, '0000000500000005'],
      [3, '0000000700000005'],
      [7, '0000000000000000'],
    ]);
    peer.destroy();
  });

  it('frames read before the peer closed still reach their stream when a paused reader resumes', async () => {
    const { client, peer, reply } = await pair();
    const opened = client.openStream('stdout', [['streamtype', ['stdout']]], 5_000);
    await reply(1);
    const stdout = await opened;
    const transport = new SpdyTransport(client, { error: stdout, stdin: null, stdout, stderr: null, resize: null } as never, 'v4.channel.k8s.io');
    let got = 0;
    let closed = false;
    transport.attach({
      data: (_s, p) => {
        got += p.length;
        client.pause(); // a slow reader: stop after the first frame
      },
      heard: () => {},
      error: () => {},
      closed: () => (closed = true),
    });
    // The server's end: its last data, then it closes, all before we read on (as the kubelet
    // sends the Status, resets the streams and closes while the client is still paused).
    const frame = Buffer.alloc(16 * 1024, 0x62);
    for (let i = 0; i < 20; i++) peer.write(encodeData(1, frame));
    peer.end();
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(closed, false, 'not closed while frames wait for the reader');
    while (!closed) {
      client.resume();
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(got, 20 * frame.length, 'every byte the peer sent before closing');
  });

  it('does not wait for windows from a peer that keeps none (spdystream), and respects one that does', async () => {
    const { client, peer, reader, reply } = await pair();
    const opened = client.openStream('stdin', [['streamtype', ['stdin']]], 5_000);
    await reply(1);
    const stdin = await opened;
    const big = Buffer.alloc(200 * 1024, 7);
    await new Promise<void>((r) => client.write(stdin, big, false, () => r()));
    await reader.until((f) => f.filter((x) => !x.control).reduce((n, x) => n + x.payload.length, 0) === big.length);
    assert.ok(reader.frames.filter((x) => !x.control).every((x) => x.payload.length <= 32 * 1024), 'frames of at most 32 KiB, as io.Copy writes');

    // A peer that announces a 1 KiB window gets 1 KiB, then more only after its WINDOW_UPDATE.
    const before = reader.frames.length;
    peer.write(encodeSettings([{ id: 7, value: 1024 }]));
    await new Promise((r) => setTimeout(r, 50));
    // The window is now 1024 minus what was already sent: nothing more may go.
    peer.write(encodeWindowUpdate(1, 200 * 1024 - 1024 + 1000));
    let done = false;
    client.write(stdin, Buffer.alloc(4000, 1), false, () => (done = true));
    await reader.until((f) => f.slice(before).filter((x) => !x.control).reduce((n, x) => n + x.payload.length, 0) >= 1000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(reader.frames.slice(before).filter((x) => !x.control).reduce((n, x) => n + x.payload.length, 0), 1000);
    assert.equal(done, false, 'the write waits for the window');
    peer.write(encodeWindowUpdate(1, 3000));
    await reader.until((f) => f.slice(before).filter((x) => !x.control).reduce((n, x) => n + x.payload.length, 0) === 4000);
    peer.destroy();
  });

  it('acknowledges consumed bytes with WINDOW_UPDATE, and none while paused', async () => {
    const { client, peer, reader, reply } = await pair();
    const opened = client.openStream('stdout', [['streamtype', ['stdout']]], 5_000);
    await reply(1);
    const stdout = await opened;
    let received = 0;
    stdout.listen({ data: (p) => (received += p.length), end: () => {} });
    client.attach({ heard: () => {}, error: () => {}, closed: () => {} });
    client.pause();
    for (let i = 0; i < 3; i++) peer.write(encodeData(1, Buffer.alloc(16 * 1024)));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(received, 0, 'nothing is handed on while paused');
    assert.equal(reader.frames.filter((x) => x.control && x.type === 9).length, 0);
    client.resume();
    await reader.until((f) => f.some((x) => x.control && x.type === 9));
    assert.equal(received, 48 * 1024);
    // Acknowledged in steps of at least half the initial window: 32 KiB once two 16 KiB frames were handed on.
    assert.deepEqual(reader.frames.find((x) => x.control && x.type === 9)?.payload, hex('00000001 00008000'));
    peer.destroy();
  });
});

describe('the fake kube-apiserver serves SPDY as the kubelet does', () => {
  let fake: FakeKubeApiServer;
  before(async () => {
    fake = await FakeKubeApiServer.start({ execProtocols: ['v4.channel.k8s.io'] });
    fake.addPod({ namespace: 'ns', name: 'p', containers: [{ name: 'c' }] });
  });
  after(() => fake.stop());

  function request(headers: string[], query = 'command=echo&command=hi&container=c&stdout=true&stderr=true'): Promise<{ socket: tls.TLSSocket; head: string; rest: Buffer }> {
    const url = new URL(fake.url);
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca: fake.caPem, servername: 'localhost' });
      let buf = Buffer.alloc(0);
      const onData = (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.pause();
        resolve({ socket, head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
      };
      socket.on('data', onData);
      socket.on('error', reject);
      socket.write(
        [`POST /api/v1/namespaces/ns/pods/p/exec?${query} HTTP/1.1`, `Host: ${url.host}`, `Authorization: Bearer ${fake.token}`, 'Content-Length: 0', ...headers, '', ''].join('\r\n'),
      );
    });
  }

  it('refuses a protocol it does not speak with 403 and the list it accepts', async () => {
    const { socket, head, rest } = await request(['Connection: Upgrade', 'Upgrade: SPDY/3.1', 'X-Stream-Protocol-Version: v9.channel.k8s.io']);
    assert.match(head, /^HTTP\/1\.1 403 /);
    assert.match(head, /X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io/i);
    socket.resume();
    const body = rest.toString() + (await new Promise<string>((r) => { let t = ''; socket.on('data', (c) => (t += c)); socket.on('end', () => r(t)); }));
    assert.equal(body, 'unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io], server accepts [v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]\n');
  });

  it('upgrades, replies to each stream, runs the command once all are there, then Status, RST_STREAM(CANCEL) each, GOAWAY', async () => {
    const { socket, head, rest } = await request(['Connection: Upgrade', 'Upgrade: SPDY/3.1', 'X-Stream-Protocol-Version: v5.channel.k8s.io', 'X-Stream-Protocol-Version: v4.channel.k8s.io']);
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.match(head, /\r\nUpgrade: SPDY\/3\.1\r\n/i);
    assert.match(head, /\r\nX-Stream-Protocol-Version: v4\.channel\.k8s\.io\r\n/i);
    const reader = new RawReader(socket);
    const ended = new Promise<void>((r) => socket.once('end', () => r()));
    if (rest.length > 0) socket.unshift(rest);
    socket.resume();
    const deflate = new NodeDeflate();
    const inflate = new NodeInflate();
    const types = ['error', 'stdout', 'stderr'];
    for (const [i, t] of types.entries()) {
      const block = await deflate.block(streamTypeBlock(t));
      const id = 1 + 2 * i;
      socket.write(Buffer.concat([hex('80030001'), Buffer.from([0, 0, 0, 10 + block.length]), Buffer.from([0, 0, 0, id]), hex('00000000 0000'), block]));
      await reader.until((f) => f.some((x) => x.control && x.type === 2 && x.payload.readUInt32BE(0) === id));
    }
    const replies = reader.frames.filter((x) => x.control && x.type === 2);
    for (const r of replies) {
      assert.equal(r.flags, 0);
      assert.deepEqual(await inflate.block(r.payload.subarray(4)), hex('00000000'), 'SYN_REPLY carries no headers');
    }
    await ended;
    const after = reader.frames.filter((x) => !(x.control && x.type === 2));
    assert.deepEqual(
      after.map((x) => (x.control ? `ctl ${x.type} ${x.payload.toString('hex')}` : `data ${x.streamId} ${x.payload.toString()}`)),
      [
        'data 3 hi\n',
        'data 1 {"metadata":{},"status":"Success"}',
        'ctl 3 0000000100000005',
        'ctl 3 0000000300000005',
        'ctl 3 0000000500000005',
        'ctl 7 0000000500000000',
      ],
    );
    assert.equal(fake.execs.at(-1)?.transport, 'spdy');
    socket.destroy();
  });
});

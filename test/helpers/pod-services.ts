/**
 * Services that play the pod's listening ports in forwarding tests, on loopback of the test
 * process: an HTTP server, a one-line request/response server, a length-prefixed echo (works
 * without half-close, so on every protocol path), and a source of N deterministic bytes.
 * They count the connections they hold, so a test can see that nothing lingers.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

export interface PodServices {
  http: number;
  line: number;
  echo: number;
  source: number;
  /** Reads until the client's EOF, then answers the sha256 of what it read: needs half-close. */
  digest: number;
  /** Connections currently open on any of the services. */
  open(): number;
  /** sha256 of what `source` sends: `bytes` of a fixed pseudo-random stream. */
  sourceSha256: string;
  sourceBytes: number;
  close(): Promise<void>;
}

/** 64 KiB of fixed pseudo-random bytes; each chunk of the source stamps its number on a copy,
 *  so a dropped, repeated or reordered chunk changes the checksum. */
const BASE = Buffer.concat(Array.from({ length: 1024 }, (_, i) => crypto.createHash('sha512').update(`podbridge-${i}`).digest()));

export async function startPodServices(sourceBytes = 100 * 1024 * 1024): Promise<PodServices> {
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  const listen = (server: net.Server) =>
    new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));

  const httpServer = http.createServer((req, res) => {
    const body = `hello from the pod: ${req.method} ${req.url}\n`;
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
  httpServer.on('connection', track);

  // One line in, one line out (upper case), then the server closes: -W request/response.
  const lineServer = net.createServer((s) => {
    track(s);
    let got = '';
    s.on('data', (b: Buffer) => {
      got += b.toString('utf8');
      const nl = got.indexOf('\n');
      if (nl >= 0) s.end(`${got.slice(0, nl).toUpperCase()}\n`);
    });
  });

  // 4-byte big-endian length, then that many bytes, echoed back; then the server closes.
  const echoServer = net.createServer((s) => {
    track(s);
    let want = -1;
    let seen = 0;
    let head = Buffer.alloc(0);
    s.on('data', (b: Buffer) => {
      if (want < 0) {
        head = Buffer.concat([head, b]);
        if (head.length < 4) return;
        want = head.readUInt32BE(0);
        b = head.subarray(4);
      }
      seen += b.length;
      if (!s.write(b)) {
        s.pause();
        s.once('drain', () => s.resume());
      }
      if (seen >= want) s.end();
    });
  });

  const hash = crypto.createHash('sha256');
  const blocks = Math.ceil(sourceBytes / 65536);
  const chunk = (i: number) => {
    const b = Buffer.from(BASE.subarray(0, 65536));
    b.writeUInt32BE(i, 0);
    return i === blocks - 1 && sourceBytes % 65536 !== 0 ? b.subarray(0, sourceBytes % 65536) : b;
  };
  for (let i = 0; i < blocks; i++) hash.update(chunk(i));
  const sourceSha256 = hash.digest('hex');
  const sourceServer = net.createServer((s) => {
    track(s);
    let i = 0;
    const more = () => {
      while (i < blocks) {
        const ok = s.write(chunk(i++));
        if (!ok) return void s.once('drain', more);
      }
      s.end();
    };
    more();
  });

  const digestServer = net.createServer({ allowHalfOpen: true }, (s) => {
    track(s);
    const h = crypto.createHash('sha256');
    s.on('data', (b: Buffer) => h.update(b));
    s.on('end', () => s.end(`${h.digest('hex')}\n`));
  });

  const servers: net.Server[] = [httpServer, lineServer, echoServer, sourceServer, digestServer];
  const [httpPort, line, echo, source, digest] = await Promise.all(servers.map(listen)) as [number, number, number, number, number];
  return {
    http: httpPort,
    line,
    echo,
    source,
    digest,
    sourceSha256,
    sourceBytes,
    open: () => sockets.size,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((srv) => new Promise((r) => srv.close(() => r(undefined)))));
    },
  };
}

/** A loopback port nothing listens on; waiting for an `ssh -L` listener to come up. */
export { freePort as closedPort, waitForListener } from './ports.ts';

/**
 * The browser terminal's WebSocket without a browser: a tiny upgrade handler standing in for the
 * web door (the identity is taken from the URL's `as`, as the door takes it from a cookie or a
 * proxy header), and a `ws` client that records what a page would get.
 */
import http from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { Identity } from '../../src/identity.ts';
import type { TerminalHub, TerminalOpen } from '../../src/web/terminal/hub.ts';

/** An identity as the web door would build it for `name` (which the policy must list). */
export function webIdentity(name: string, permits: { pty?: boolean } = {}): Identity {
  return {
    name,
    keyFingerprint: 'web-login',
    keyComment: null,
    kubernetes: null,
    groups: [],
    source: { kind: 'key', listedAt: 'test' },
    forcedCommand: null,
    permits: { pty: permits.pty ?? true, portForwarding: false },
  };
}

export interface TerminalServer {
  url(query: Record<string, string | number>): string;
  close(): Promise<void>;
}

export async function startTerminalServer(hub: TerminalHub, identities: Record<string, Identity>): Promise<TerminalServer> {
  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const identity = identities[u.searchParams.get('as') ?? ''];
    if (!identity) return socket.destroy();
    const q = (k: string) => u.searchParams.get(k);
    const open: TerminalOpen = q('resume')
      ? { kind: 'resume', session: q('resume')! }
      : q('observe')
        ? { kind: 'observe', session: q('observe')! }
        : { kind: 'new', target: q('target') ?? '', cols: Number(q('cols') ?? 80), rows: Number(q('rows') ?? 24), term: q('term') ?? 'xterm-256color', command: q('command') };
    wss.handleUpgrade(req, socket, head, (ws) => hub.handle(ws, { identity, remote: `${req.socket.remoteAddress}:${req.socket.remotePort}` }, open));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (query) => `ws://127.0.0.1:${port}/ws/terminal?${new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))}`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
    },
  };
}

const TAIL = 8192;

export type Message = { type: string } & Record<string, unknown>;

/** One page's socket: output bytes and JSON messages as they came. */
export class TermClient {
  readonly ws: WebSocket;
  private readonly decoder = new StringDecoder('utf8');
  private readonly pieces: string[] = [];
  /** The last TAIL characters of output, which untilOutput searches (searching all would be quadratic). */
  private tail = '';
  /** Bumped with each piece of output, so a search knows what it already saw. */
  private seq = 0;
  readonly messages: Message[] = [];
  /** Resolves with the close code once the socket closed. */
  readonly closed: Promise<number>;
  private waiters: Array<() => void> = [];
  bytes = 0;

  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('error', () => {});
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        const piece = this.decoder.write(data);
        this.pieces.push(piece);
        this.tail = (this.tail + piece).slice(-TAIL);
        this.seq++;
        this.bytes += data.length;
      } else this.messages.push(JSON.parse(data.toString()) as Message);
      this.wake();
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => (this.wake(), resolve(code))));
  }

  /** Everything printed so far, as text. */
  text(): string {
    const all = this.pieces.join('');
    this.pieces.length = 0;
    this.pieces.push(all);
    return all;
  }

  message(type: string): Message | undefined {
    return this.messages.find((m) => m.type === type);
  }

  async opened(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) return;
    await new Promise<void>((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('close', (code) => reject(new Error(`closed (${code}) before it opened`)));
    });
  }

  type(text: string): void {
    this.ws.send(Buffer.from(text), { binary: true });
  }

  send(message: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(message));
  }

  /** Waits until `done()` holds; fails with what was seen when `ms` pass first. */
  async until(done: () => boolean, what: string, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; output: ${JSON.stringify(this.text().slice(-600))}; messages: ${JSON.stringify(this.messages).slice(-600)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => (clearTimeout(t), resolve()));
      });
    }
  }

  /** Output matching `re`, in all output so far or, later on, in its last TAIL characters. */
  untilOutput(re: RegExp, ms?: number): Promise<void> {
    let first = true;
    let seen = -1;
    return this.until(() => {
      if (first) {
        first = false;
        seen = this.seq;
        return re.test(this.text());
      }
      if (seen === this.seq) return false;
      seen = this.seq;
      return re.test(this.tail);
    }, `output matching ${re}`, ms);
  }

  untilMessage(type: string, ms?: number): Promise<Message> {
    return this.until(() => this.message(type) !== undefined, `a "${type}" message`, ms).then(() => this.message(type)!);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

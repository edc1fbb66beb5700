/**
 * The terminal WebSocket's door: `GET /ws/terminal?target=…&cols=…&rows=…&term=…[&command=…]`,
 * `?resume=ID` or `?observe=ID` (docs/web.md, the protocol in web-protocol). The Origin must be
 * the page's own (a cross-site page must not drive a logged-in user's terminal), then who it is
 * (proxy header or cookie), then the request goes to the TerminalHub with the identity.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../log.ts';
import type { Identity } from '../policy/index.ts';
import { MAX_LOGIN_NAME_LENGTH } from '../target.ts';
import type { WhoIsIt } from './who.ts';

/** What web-core's TerminalHub (src/web/terminal/hub.ts) offers the door. */
export type TerminalOpen =
  | { kind: 'new'; target: string; cols: number; rows: number; term: string; command: string | null }
  | { kind: 'resume'; session: string }
  | { kind: 'observe'; session: string };
export interface TerminalSink {
  handle(ws: WebSocket, principal: { identity: Identity; remote: string }, open: TerminalOpen): void;
}

/** Keystrokes and pastes; larger frames close the socket (ws answers 1009). */
const MAX_FRAME = 1024 * 1024;
const MAX_COMMAND = 8 * 1024;

export function parseOpen(query: URLSearchParams): TerminalOpen | string {
  const id = (v: string | null) => v !== null && /^[A-Za-z0-9_-]{1,64}$/.test(v);
  const resume = query.get('resume');
  if (resume !== null) return id(resume) ? { kind: 'resume', session: resume } : 'resume: not a session id';
  const observe = query.get('observe');
  if (observe !== null) return id(observe) ? { kind: 'observe', session: observe } : 'observe: not a session id';
  const target = query.get('target');
  if (target === null || target === '' || target.length > MAX_LOGIN_NAME_LENGTH) return 'target: name a target (the login name an SSH user would type)';
  const size = (name: string) => {
    const n = Number(query.get(name));
    return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : null;
  };
  const cols = size('cols');
  const rows = size('rows');
  if (cols === null || rows === null) return 'cols and rows: whole numbers from 1 to 1000';
  const term = query.get('term') ?? 'xterm-256color';
  if (!/^[A-Za-z0-9._+-]{1,64}$/.test(term)) return 'term: a terminal type such as xterm-256color';
  const command = query.get('command');
  if (command !== null && (command === '' || command.length > MAX_COMMAND)) return `command: empty or longer than ${MAX_COMMAND} characters`;
  return { kind: 'new', target, cols, rows, term, command };
}

export class TerminalUpgrade {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME, clientTracking: true });

  constructor(
    private readonly deps: { who: WhoIsIt; origin: (req: http.IncomingMessage) => string; sink: () => TerminalSink | null; log: Logger },
  ) {}

  handle(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const remote = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const refuse = (status: number, why: string) => {
      socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Not Found'}\r\nConnection: close\r\nContent-Type: text/plain\r\n\r\n${why}\n`);
    };
    if (url.pathname !== '/ws/terminal') return refuse(404, 'no such WebSocket');
    const expected = this.deps.origin(req);
    if (req.headers.origin !== expected) {
      this.deps.log.warn({ remote, origin: req.headers.origin ?? null, expected }, 'web: WebSocket upgrade refused: its Origin is not this page');
      return refuse(403, `WebSocket refused: Origin ${req.headers.origin ?? '(none)'} is not ${expected}`);
    }
    const who = this.deps.who.check(req);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const fail = (code: number, message: string) => {
        ws.send(JSON.stringify({ type: 'error', message }));
        ws.close(code, message.slice(0, 120));
      };
      if (!who.ok) return fail(who.status === 401 ? 4001 : 4003, who.message);
      const open = parseOpen(url.searchParams);
      if (typeof open === 'string') return fail(1008, `bad terminal request: ${open}`);
      const sink = this.deps.sink();
      if (sink === null) return fail(1011, 'browser terminals are not available in this build of podbridge');
      sink.handle(ws, { identity: who.identity, remote: who.remote }, open);
    });
  }

  /** Closes sockets the hub never took (it closes its own). */
  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }
}

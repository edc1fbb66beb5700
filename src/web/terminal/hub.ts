/**
 * Browser terminals after authentication: each is a session core (src/session/core.ts) with a
 * WebSocket front door. The hub keeps them by id so that a page that lost its socket (a refresh,
 * a laptop asleep) can resume within the grace period with the screen restored, lets read-only
 * observers watch where the policy grants `observe`, and pings every socket so that proxies do
 * not cut idle terminals. The wire protocol is in protocol.ts and docs/web.md.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { WebSocket, type RawData } from 'ws';
import type { AuditEvent } from '../../audit.ts';
import type { Backend, Exit } from '../../backends/backend.ts';
import { BridgeError, toBridgeError } from '../../errors.ts';
import type { Identity } from '../../identity.ts';
import type { Logger } from '../../log.ts';
import type { SessionTaps } from '../../ops/session-tap.ts';
import { authorize, type PolicySource } from '../../policy/index.ts';
import { SessionCore, type SessionTimeouts } from '../../session/core.ts';
import { formatDuration } from '../../session/duration.ts';
import { eventReporter, type EventReporter } from '../../session/events.ts';
import type { IdentityLimits } from '../../session/limits.ts';
import { formatTarget, parseTarget, type Target } from '../../target.ts';
import { TerminalOutput } from './output.ts';
import { clampSize, CLOSE, parseClientMessage, type ServerMessage } from './protocol.ts';
import { Screen } from './screen.ts';

export interface WebPrincipal {
  identity: Identity;
  /** The client's address (ip:port) for the log, the audit trail and limits. */
  remote: string;
}

export type TerminalOpen =
  | { kind: 'new'; target: string; cols: number; rows: number; term: string; command: string | null }
  | { kind: 'resume'; session: string }
  | { kind: 'observe'; session: string };

export interface TerminalHubDeps {
  backend: Backend;
  policy: PolicySource;
  session: SessionTimeouts & { acceptEnv: readonly string[]; webResumeGraceMs: number; webKeepaliveMs?: number };
  motd: string | null;
  log: Logger;
  audit: { emit(e: AuditEvent): void };
  taps?: SessionTaps;
  /** The same counters the SSH door uses: a browser terminal is one of the identity's sessions. */
  identities: IdentityLimits;
}

/** WebSocket pings to every terminal socket: below the ~60 s idle cut of common proxies. */
export const KEEPALIVE_MS = 20_000;
/** Resizes closer together than this are merged into the last (a window being dragged). */
const RESIZE_COALESCE_MS = 50;
/** Input the process has not read yet, per terminal, before the page's socket is paused. */
const INPUT_HIGH_WATER = 64 * 1024;

export class TerminalHub {
  private readonly sessions = new Map<string, TerminalSession>();
  /** Per socket: answered the last ping, and how many bytes had reached it then. */
  private readonly alive = new WeakMap<WebSocket, { pong: boolean; written: number }>();
  private readonly sockets = new Set<WebSocket>();
  private readonly keepalive: NodeJS.Timeout | null;
  private closing = false;

  constructor(private readonly deps: TerminalHubDeps) {
    const every = deps.session.webKeepaliveMs ?? KEEPALIVE_MS;
    this.keepalive = every > 0 ? setInterval(() => this.ping(), every) : null;
    this.keepalive?.unref();
  }

  /** Number of live browser terminals. */
  size(): number {
    return this.sessions.size;
  }

  /** Called by the web door after authentication and the Origin check, with the upgraded socket. */
  handle(ws: WebSocket, principal: WebPrincipal, open: TerminalOpen): void {
    ws.on('error', () => {}); // a reset ends this socket only
    this.track(ws);
    if (this.closing) return refuse(ws, CLOSE.normal, 'podbridge is shutting down; try again in a moment');
    if (open.kind === 'new') return this.open(ws, principal, open);
    const session = this.sessions.get(open.session);
    if (session === undefined || session.finished) return refuse(ws, CLOSE.noSuchSession, 'no such terminal session (it ended, or its grace period passed); open a new one');
    if (open.kind === 'resume') {
      if (session.identity.name !== principal.identity.name) return refuse(ws, CLOSE.forbidden, 'this terminal session belongs to another identity; open a new one');
      return session.attach(ws, true);
    }
    session.observe(ws, principal);
  }

  /** Ends every terminal at once, each told `reason` (shutdown, stop). */
  async close(reason: string): Promise<void> {
    this.closing = true;
    if (this.keepalive) clearInterval(this.keepalive);
    await Promise.all([...this.sessions.values()].map((s) => s.end(reason)));
    for (const ws of this.sockets) ws.terminate();
  }

  /** SIGTERM: tell every terminal, let them run up to `graceMs`, then end the rest. */
  async shutdown(graceMs: number): Promise<void> {
    this.closing = true;
    const live = [...this.sessions.values()];
    for (const s of live) s.core.notify(`podbridge is shutting down; this session ends in ${Math.round(graceMs / 1000)} s`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(live.map((s) => s.core.closed)), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    await this.close('podbridge shut down');
  }

  private open(ws: WebSocket, principal: WebPrincipal, open: Extract<TerminalOpen, { kind: 'new' }>): void {
    const { identity } = principal;
    const { deps } = this;
    const id = randomBytes(16).toString('base64url');
    const events = eventReporter(deps.log, deps.audit, `web-${randomUUID().slice(0, 8)}`, principal.remote).child({ identity: identity.name, login: open.target.slice(0, 200), terminal: id.slice(0, 8) });
    if (!identity.permits.pty) {
      // The page is a terminal: without one the output would be unreadable.
      events.log.info('browser terminal refused: the credential does not permit a pty');
      return refuse(ws, CLOSE.forbidden, `identity "${identity.name}" may not have a terminal (its credential does not permit a pty), and a browser terminal needs one; use ssh -T`);
    }
    if (!deps.identities.sessions.tryAcquire(identity.name)) {
      events.log.warn({ limit: deps.identities.sessions.limit }, 'browser terminal refused: too many sessions for this identity');
      events.audit({ event: 'limit', limit: 'max-sessions-per-identity', detail: identity.name });
      return refuse(ws, CLOSE.limit, `identity "${identity.name}" has ${deps.identities.sessions.limit} sessions open (the limit); end one (an SSH session or a browser terminal) and retry`);
    }
    let target: Target | BridgeError;
    try {
      target = parseTarget(open.target, { defaultEngine: deps.backend.defaultEngine });
    } catch (err) {
      target = toBridgeError(err);
    }
    const core = new SessionCore({
      backend: deps.backend,
      policy: deps.policy,
      target,
      identity,
      acceptEnv: deps.session.acceptEnv,
      timeouts: deps.session,
      motd: deps.motd,
      events,
      taps: deps.taps,
    });
    const size = clampSize(open.cols, open.rows);
    const term = /^[A-Za-z0-9._+-]{1,64}$/.test(open.term) ? open.term : 'xterm-256color';
    // The browser's size before the process starts: no 80x24 first screen.
    core.requestTty({ term, ...size });
    const session = new TerminalSession(id, identity, target, target instanceof BridgeError ? open.target.slice(0, 200) : formatTarget(target), core, deps.policy, size, events, (p) => eventReporter(deps.log, deps.audit, events.conn, p.remote).child({ terminal: id.slice(0, 8), observer: p.identity.name }), deps.session.webResumeGraceMs, () => {
      this.sessions.delete(id);
      deps.identities.sessions.release(identity.name);
    });
    this.sessions.set(id, session);
    session.attach(ws, false);
    core.start(session.output, session.input, open.command === null ? { kind: 'shell' } : { kind: 'exec', command: open.command });
  }

  private track(ws: WebSocket): void {
    this.sockets.add(ws);
    this.alive.set(ws, { pong: true, written: 0 });
    ws.on('pong', () => {
      const a = this.alive.get(ws);
      if (a) a.pong = true;
    });
    ws.once('close', () => this.sockets.delete(ws));
  }

  /**
   * A socket that neither answered the last ping nor took any bytes since is dead (a laptop that
   * slept): cut it. One still working through a backlog has its pong queued behind it: alive.
   */
  private ping(): void {
    for (const ws of this.sockets) {
      const a = this.alive.get(ws);
      if (!a) continue;
      const written = bytesWritten(ws);
      if (!a.pong && written === a.written) {
        ws.terminate();
        continue;
      }
      a.pong = false;
      a.written = written;
      if (ws.readyState === WebSocket.OPEN) ws.ping();
    }
  }
}

/** One browser terminal: its core, its screen, the page it belongs to, its observers. */
class TerminalSession {
  readonly input = new PassThrough({ highWaterMark: INPUT_HIGH_WATER });
  readonly output: TerminalOutput;
  private readonly screen: Screen;
  private owner: WebSocket | null = null;
  /** Observers, with who they are and their own event reporter. */
  private readonly watchers = new Map<WebSocket, { name: string; events: EventReporter }>();
  private graceTimer: NodeJS.Timeout | null = null;
  private resizeTimer: NodeJS.Timeout | null = null;
  private pendingSize: { cols: number; rows: number } | null = null;
  /** The process is over (or never ran): nothing to resume. */
  finished = false;

  constructor(
    readonly id: string,
    readonly identity: Identity,
    private readonly target: Target | BridgeError,
    private readonly targetText: string,
    readonly core: SessionCore,
    private readonly policy: PolicySource,
    size: { cols: number; rows: number },
    private readonly events: EventReporter,
    /** Events about someone else on this terminal (an observer), with their own address. */
    private readonly reporterFor: (p: WebPrincipal) => EventReporter,
    private readonly graceMs: number,
    onClosed: () => void,
  ) {
    this.screen = new Screen(size);
    this.output = new TerminalOutput(
      this.screen,
      {
        owner: () => this.owner,
        observers: () => this.watchers.keys(),
        dropSlowObserver: (ws) => {
          this.watchers.get(ws)?.events.log.info('observer dropped: too slow to keep up');
          // Its socket is full, so no goodbye would get through: cut it.
          this.removeObserver(ws);
          ws.terminate();
        },
      },
      (exit) => this.exited(exit),
    );
    void core.closed.then(() => {
      this.finished = true;
      this.clearTimers();
      // The process is gone; a page or observer still attached learns it ended (if the core
      // said nothing, e.g. it ended after the grace period).
      for (const ws of [this.owner, ...this.watchers.keys()]) ws?.close(CLOSE.normal);
      this.owner = null;
      this.watchers.clear();
      this.screen.dispose();
      this.input.destroy();
      onClosed();
    });
  }

  /** The owning page (new, or resuming after a drop) takes the terminal. */
  attach(ws: WebSocket, resumed: boolean): void {
    const previous = this.owner;
    this.owner = null;
    this.output.ownerChanged();
    if (previous) {
      send(previous, { type: 'notice', message: 'this terminal was opened in another window' });
      previous.close(CLOSE.normal);
    }
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
    send(ws, this.sessionMessage(resumed, false));
    const start = () => {
      if (this.finished || ws.readyState !== WebSocket.OPEN) return;
      this.owner = ws;
      if (resumed) this.events.log.info('browser terminal resumed');
      send(ws, { type: 'observers', count: this.watchers.size });
    };
    // A resumed page gets the screen as it is, then the bytes printed since; a new one starts blank.
    if (resumed) this.output.join(ws, 'owner', start);
    else start();
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (this.owner !== ws) return;
      if (isBinary) return this.keystrokes(ws, toBuffer(data));
      const m = parseClientMessage(toBuffer(data).toString('utf8'));
      if (m === null) return this.events.log.debug('unknown terminal message ignored');
      if (m.type === 'ping') send(ws, { type: 'pong' });
      else if (m.type === 'resize') this.resize(m.cols, m.rows);
      else if (m.type === 'signal') this.core.signal(m.name);
      else void this.end('ended from the browser');
    });
    ws.once('close', () => {
      if (this.owner !== ws) return;
      this.owner = null;
      this.output.ownerChanged();
      this.detached();
    });
  }

  /** A read-only watcher, if the policy grants `observe` where this terminal runs. */
  observe(ws: WebSocket, principal: WebPrincipal): void {
    const place = this.core.place;
    const who = principal.identity.name;
    const their = this.reporterFor(principal);
    if (place === null || this.target instanceof BridgeError) return refuse(ws, CLOSE.noSuchSession, 'this terminal session is not running yet; try again in a moment');
    const d = authorize(this.policy.current(), principal.identity, {
      target: { ...this.target, namespace: this.target.namespace ?? place.namespace },
      action: 'observe',
      tty: false,
      container: place.container,
      podName: place.pod,
      docker: place.docker,
    });
    if (!d.allowed) {
      their.log.warn({ reason: d.reason }, 'observe refused');
      their.audit({ event: 'denied', identity: who, target: this.targetText, reason: d.message });
      return refuse(ws, CLOSE.forbidden, d.message);
    }
    their.log.info('observer joined');
    their.audit({ event: 'observe', identity: who, owner: this.identity.name, target: this.targetText, action: 'joined' });
    send(ws, this.sessionMessage(false, true));
    this.output.join(ws, 'observer', () => {
      if (this.finished) return;
      this.watchers.set(ws, { name: who, events: their });
      this.core.notify(`${who} is watching this terminal (read-only)`);
      this.output.broadcast({ type: 'observers', count: this.watchers.size });
    });
    // Observers are read-only: their keystrokes, resizes and signals are ignored.
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary && parseClientMessage(toBuffer(data).toString('utf8'))?.type === 'ping') send(ws, { type: 'pong' });
    });
    ws.once('close', () => this.removeObserver(ws));
  }

  end(reason: string): Promise<void> {
    return this.core.end(reason);
  }

  private removeObserver(ws: WebSocket): void {
    const watcher = this.watchers.get(ws);
    if (watcher === undefined) return;
    this.watchers.delete(ws);
    const { name: who, events: their } = watcher;
    their.log.info('observer left');
    their.audit({ event: 'observe', identity: who, owner: this.identity.name, target: this.targetText, action: 'left' });
    if (this.finished) return;
    this.core.notify(`${who} stopped watching this terminal`);
    this.output.broadcast({ type: 'observers', count: this.watchers.size });
  }

  private keystrokes(ws: WebSocket, bytes: Buffer): void {
    // Bounded: while the process has not read what came, stop reading the page's socket.
    if (!this.input.write(bytes) && !ws.isPaused) {
      ws.pause();
      this.input.once('drain', () => ws.resume());
    }
  }

  /** The first resize applies at once; more within RESIZE_COALESCE_MS are merged into the last. */
  private resize(cols: number, rows: number): void {
    const size = clampSize(cols, rows);
    if (this.resizeTimer) {
      this.pendingSize = size;
      return;
    }
    this.applySize(size);
    const settle = () => {
      const next = this.pendingSize;
      this.pendingSize = null;
      this.resizeTimer = null;
      if (next === null) return;
      this.applySize(next);
      this.resizeTimer = setTimeout(settle, RESIZE_COALESCE_MS);
    };
    this.resizeTimer = setTimeout(settle, RESIZE_COALESCE_MS);
  }

  private applySize(size: { cols: number; rows: number }): void {
    if (this.finished) return;
    this.screen.resize(size);
    this.core.resize(size);
  }

  /** The page's socket dropped: the process runs on for the grace period, then is ended. */
  private detached(): void {
    if (this.finished) return;
    this.events.log.info({ graceSeconds: this.graceMs / 1000 }, 'browser gone; the terminal waits to be resumed');
    for (const o of this.watchers.keys()) send(o, { type: 'notice', message: 'the owner of this terminal disconnected' });
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      this.events.log.info('resume grace period over; ending the terminal');
      this.core.clientGone(`browser gone for ${formatDuration(this.graceMs)} (resume grace period over)`);
    }, this.graceMs);
  }

  private exited(_exit: Exit): void {
    this.finished = true;
    for (const ws of [this.owner, ...this.watchers.keys()]) ws?.close(CLOSE.normal);
  }

  private sessionMessage(resumed: boolean, observer: boolean): ServerMessage {
    return { type: 'session', id: this.id, target: this.targetText, resumed, observer, graceSeconds: Math.round(this.graceMs / 1000) };
  }

  private clearTimers(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    if (this.resizeTimer) clearTimeout(this.resizeTimer);
    this.graceTimer = this.resizeTimer = null;
  }
}

function send(ws: WebSocket, message: ServerMessage): void {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
}

/** The one-line error an SSH user would get, then the close code that says what kind it is. */
function refuse(ws: WebSocket, code: number, message: string): void {
  send(ws, { type: 'error', message });
  ws.close(code);
}

/** Bytes the socket under `ws` has written so far (ws keeps its net.Socket in `_socket`). */
function bytesWritten(ws: WebSocket): number {
  return (ws as unknown as { _socket?: { bytesWritten?: number } })._socket?.bytesWritten ?? 0;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

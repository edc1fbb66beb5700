/**
 * Browser terminals after authentication: each is a session core (src/session/core.ts) with a
 * WebSocket front door. The hub keeps them by id so that a page that lost its socket (a refresh,
 * a laptop asleep) can resume within the grace period with the screen restored, lets read-only
 * observers watch where the policy grants `observe`, and pings every socket so that proxies do
 * not cut idle terminals. The wire protocol is in protocol.ts and docs/web.md.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
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
import { clampSize, CLOSE, exitMessage, parseClientMessage, type ServerMessage } from './protocol.ts';
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
/** A ping without payload, server to client: two header bytes, which prove nothing about the peer. */
const PING_FRAME_BYTES = 2;
/** Ended terminals whose exit status a resuming page can still read (each kept for the grace period). */
const ENDED_KEPT = 1000;

/** Why the bridge closed a socket, for its disconnect audit event (set just before it closes it). */
const closeReasons = new WeakMap<WebSocket, string>();

/** A terminal that ended while its page was away: what that page would have read, for its return. */
interface Ended {
  identity: string;
  exit: ServerMessage;
  until: number;
}

export class TerminalHub {
  private readonly sessions = new Map<string, TerminalSession>();
  /** By terminal id, oldest first: bounded by ENDED_KEPT and by the grace period. */
  private readonly ended = new Map<string, Ended>();
  /**
   * Per socket: answered the last ping since it went; bytes the kernel had taken when it went; a
   * ping went unanswered with nothing drained since (one more such interval cuts it); the kernel's
   * send queue for it when last looked at (null: not looked at, or not known on this system).
   */
  private readonly alive = new WeakMap<WebSocket, { pong: boolean; took: number; suspect: boolean; queued: number | null }>();
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
    const id = open.kind === 'new' ? randomBytes(16).toString('base64url') : open.session;
    const socketEvents = this.connected(ws, principal, id, open.kind);
    this.track(ws);
    if (this.closing) return refuse(ws, CLOSE.normal, 'podbridge is shutting down; try again in a moment');
    if (open.kind === 'new') return this.open(ws, principal, open, id, socketEvents.conn);
    const session = this.sessions.get(open.session);
    if (session === undefined || session.finished) {
      // Its process ended while the page was away (within the grace): the page reads how it ended,
      // as it would have had it been attached.
      const ended = open.kind === 'resume' ? this.endedFor(open.session, principal.identity.name) : null;
      if (ended === null) return refuse(ws, CLOSE.noSuchSession, 'no such terminal session (it ended, or its grace period passed); open a new one');
      send(ws, ended);
      return closeWith(ws, CLOSE.normal, 'the terminal had ended; its exit status sent');
    }
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
    for (const ws of this.sockets) {
      if (!closeReasons.has(ws)) closeReasons.set(ws, reason);
      ws.terminate();
    }
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

  /** The web door's connect audit event for `ws`, and its disconnect event (with why) when it closes. */
  private connected(ws: WebSocket, principal: WebPrincipal, terminal: string, mode: TerminalOpen['kind']): EventReporter {
    const events = eventReporter(this.deps.log, this.deps.audit, `web-${randomUUID().slice(0, 8)}`, principal.remote);
    const who = { door: 'web' as const, identity: principal.identity.name, terminal: terminal.slice(0, 8) };
    const at = Date.now();
    events.audit({ event: 'connect', ...who, mode });
    ws.once('close', (code: number) => {
      const reason = closeReasons.get(ws) ?? (code === 1000 || code === 1001 || code === 4000 ? 'closed by the page' : 'connection lost');
      events.audit({ event: 'disconnect', ...who, durationMs: Date.now() - at, reason, code });
    });
    return events;
  }

  /** The exit message of `id` if it ended within its grace period and belongs to `identity`. */
  private endedFor(id: string, identity: string): ServerMessage | null {
    this.pruneEnded();
    const e = this.ended.get(id);
    return e !== undefined && e.identity === identity ? e.exit : null;
  }

  private pruneEnded(): void {
    const now = Date.now();
    for (const [id, e] of this.ended) {
      if (e.until > now && this.ended.size <= ENDED_KEPT) break;
      this.ended.delete(id);
    }
  }

  private open(ws: WebSocket, principal: WebPrincipal, open: Extract<TerminalOpen, { kind: 'new' }>, id: string, conn: string): void {
    const { identity } = principal;
    const { deps } = this;
    const events = eventReporter(deps.log, deps.audit, conn, principal.remote).child({ identity: identity.name, login: open.target.slice(0, 200), terminal: id.slice(0, 8) });
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
    const grace = deps.session.webResumeGraceMs;
    const session = new TerminalSession(id, identity, target, target instanceof BridgeError ? open.target.slice(0, 200) : formatTarget(target), core, deps.policy, size, events, (p) => eventReporter(deps.log, deps.audit, events.conn, p.remote).child({ terminal: id.slice(0, 8), observer: p.identity.name }), grace, (exit) => {
      this.ended.set(id, { identity: identity.name, exit: exitMessage(exit), until: Date.now() + grace });
      this.pruneEnded();
    }, () => {
      this.sessions.delete(id);
      deps.identities.sessions.release(identity.name);
    });
    this.sessions.set(id, session);
    session.attach(ws, false);
    core.start(session.output, session.input, open.command === null ? { kind: 'shell' } : { kind: 'exec', command: open.command });
  }

  private track(ws: WebSocket): void {
    this.sockets.add(ws);
    this.alive.set(ws, { pong: true, took: 0, suspect: false, queued: null });
    ws.on('pong', () => {
      const a = this.alive.get(ws);
      if (a) a.pong = true;
    });
    ws.once('close', () => this.sockets.delete(ws));
  }

  /**
   * A socket that answered the last ping is alive. One that did not may be a page working through a
   * backlog, its pong queued behind it, so a missed pong only makes it a suspect: at the next ping
   * it is still alive if it pongs, if the kernel took more bytes for it than our ping (only the
   * peer's acknowledgements make room once its buffers are full), or if the kernel's own send queue
   * for it shrank (Linux: /proc/net/tcp; the backlog may sit there entirely, with nothing left in
   * Node). Neither pong nor drain for a whole interval: gone (a laptop that slept), cut it.
   */
  private ping(): void {
    let queues: Map<string, number> | null | undefined;
    const sendQueue = (ws: WebSocket) => kernelQueue((queues ??= readKernelQueues()), ws);
    for (const ws of this.sockets) {
      const a = this.alive.get(ws);
      if (!a) continue;
      const took = kernelTook(ws);
      if (!a.pong) {
        const queued = sendQueue(ws);
        const drained = took - a.took > PING_FRAME_BYTES || (queued !== null && a.queued !== null && queued < a.queued);
        if (a.suspect && !drained) {
          closeReasons.set(ws, 'no answer to keepalive pings and no bytes taken');
          ws.terminate();
          continue;
        }
        a.suspect = !drained;
        a.queued = queued;
      } else {
        a.suspect = false;
        a.queued = null;
      }
      a.pong = false;
      a.took = took;
      // The queue when the ping goes, for a late pong's judgement (read only for suspects).
      if (a.suspect || a.queued !== null) a.queued = sendQueue(ws);
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
    /** The process ended (before onClosed): how, for a page that comes back within the grace. */
    private readonly onExit: (exit: Exit) => void,
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
          closeReasons.set(ws, 'observer too slow to keep up');
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
      for (const ws of [this.owner, ...this.watchers.keys()]) if (ws) closeWith(ws, CLOSE.normal, 'the terminal ended');
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
      closeWith(previous, CLOSE.normal, 'the terminal was opened in another window');
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

  private exited(exit: Exit): void {
    this.finished = true;
    // Only a page that was away needs it later: one attached (or the one that ended it) read it now.
    if (this.owner === null) this.onExit(exit);
    for (const ws of [this.owner, ...this.watchers.keys()]) if (ws) closeWith(ws, CLOSE.normal, 'the terminal ended');
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
  closeWith(ws, code, `refused: ${message}`);
}

function closeWith(ws: WebSocket, code: number, reason: string): void {
  if (!closeReasons.has(ws)) closeReasons.set(ws, reason);
  ws.close(code);
}

/**
 * Bytes the kernel has taken from the socket under `ws` (ws keeps its net.Socket in `_socket`):
 * `bytesWritten` counts what is still queued in Node too, `writableLength` is that queue.
 */
function kernelTook(ws: WebSocket): number {
  const socket = (ws as unknown as { _socket?: { bytesWritten?: number; writableLength?: number } })._socket;
  return (socket?.bytesWritten ?? 0) - (socket?.writableLength ?? 0);
}

/**
 * The kernel's send queue (bytes not yet acknowledged by the peer) of every TCP socket, by
 * "localPort:remotePort", from /proc/net/tcp{,6}; null where that does not exist. Read at most
 * once per keepalive round, and only when a page missed a pong.
 */
function readKernelQueues(): Map<string, number> | null {
  const queues = new Map<string, number>();
  let found = false;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    found = true;
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5) continue;
      const local = f[1]!.split(':').pop()!;
      const remote = f[2]!.split(':').pop()!;
      const key = `${parseInt(local, 16)}:${parseInt(remote, 16)}`;
      // Two sockets with the same ports (peers on different addresses): not known.
      queues.set(key, queues.has(key) ? NaN : parseInt(f[4]!.split(':')[0]!, 16));
    }
  }
  return found ? queues : null;
}

function kernelQueue(queues: Map<string, number> | null, ws: WebSocket): number | null {
  const socket = (ws as unknown as { _socket?: { localPort?: number; remotePort?: number } })._socket;
  const q = queues?.get(`${socket?.localPort}:${socket?.remotePort}`);
  return q === undefined || Number.isNaN(q) ? null : q;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

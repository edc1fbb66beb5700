/**
 * One session, whatever front door it came through (SSH channel, browser terminal): collects the
 * terminal and environment requests, then plan -> authorize (the login name, then the place it
 * resolved to) -> backend.open -> pump -> finish; forwards resizes and signals (keeping those that
 * arrive while the process opens), enforces idle and duration limits with a warning, reports to
 * the audit trail and the taps (metrics, recording), and maps how the process ended. It talks to
 * its door only through a SessionSink; the doors are thin adapters (src/ssh/session.ts,
 * src/web/terminal/). Nothing about a particular backend lives here.
 */
import type { Readable } from 'node:stream';
import type { Backend, Exit, ProcessSpec, RemoteProcess, ResolvedPlace, TerminalSize, TtySpec } from '../backends/backend.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import type { Identity } from '../identity.ts';
import type { Logger } from '../log.ts';
import { pump } from '../pipe.ts';
import { authorize, planSession, type AccessRequest, type Decision, type PolicySource } from '../policy/index.ts';
import { formatTarget, type Target } from '../target.ts';
import type { SessionTap, SessionTaps } from '../ops/session-tap.ts';
import { Deadline, formatDuration } from './duration.ts';
import type { EventReporter } from './events.ts';
import { checkTty, EnvRequests, REQUEST_LIMITS, runKind, SFTP_SERVER_COMMAND, type RunRequest } from './requests.ts';
import type { SessionSink } from './sink.ts';

/** Exit status for failures of the bridge itself (no pod, forbidden, stream lost), like ssh's own 255. */
export const BRIDGE_FAILURE_STATUS = 255;

/** How long a command may run on after a client EOF that v4 cannot deliver before the user is told. */
const V4_EOF_NOTICE_MS = 3000;

export interface SessionTimeouts {
  idleTimeoutMs: number;
  maxDurationMs: number;
  warningMs: number;
}

export interface SessionCoreContext {
  backend: Backend;
  policy: PolicySource;
  /** The parsed login name, or why no session can start here (a bad login name, a credential
   *  the policy no longer accepts, a connection cap), reported when the session starts. */
  target: Target | BridgeError;
  identity: Identity;
  acceptEnv: readonly string[];
  timeouts: SessionTimeouts;
  motd: string | null;
  /** Log and audit with the connection's fields bound. */
  events: EventReporter;
  /** Listeners (metrics, recording) called at the session's turning points; see ops/session-tap.ts. */
  taps?: SessionTaps;
}

export type SessionPhase = 'setup' | 'opening' | 'running' | 'done';

export class SessionCore {
  private ttySpec: TtySpec | null = null;
  private readonly env: EnvRequests;
  /** The latest resize not yet applied (arrived while the process was being opened). */
  private pendingSize: TerminalSize | null = null;
  /** Signals that arrived while the process was being opened (a Ctrl-C at a slow start). */
  private readonly pendingSignals: string[] = [];
  private phaseNow: SessionPhase = 'setup';
  private process: RemoteProcess | null = null;
  /** Every byte for the client leaves through this, the command's and the bridge's alike. */
  private sink: SessionSink | null = null;
  private tap: SessionTap | null = null;
  private readonly abort = new AbortController();
  private gone = false;
  /** Why the bridge ended the session itself (timeout, shutdown); reported instead of the exit. */
  private endReason: string | null = null;
  private lastActivity = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];
  private maxDuration: Deadline | null = null;
  /** The session's log (the connection's fields bound). */
  readonly log: Logger;
  private resolvedPlace: ResolvedPlace | null = null;
  private resolveClosed!: () => void;
  /** Resolves once the session is over and its process is gone. */
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));

  constructor(private readonly ctx: SessionCoreContext) {
    this.log = ctx.events.log;
    this.env = new EnvRequests(ctx.acceptEnv, this.log);
  }

  get phase(): SessionPhase {
    return this.phaseNow;
  }

  /** The terminal this session has (its current size), or null. */
  get tty(): TtySpec | null {
    return this.ttySpec;
  }

  /** Where the target resolved to, once the backend said (observers are authorized against it). */
  get place(): ResolvedPlace | null {
    return this.resolvedPlace;
  }

  /** A terminal for the process; false when refused (the session may go on without one). */
  requestTty(tty: TtySpec): boolean {
    if (this.phaseNow !== 'setup') return false;
    const accepted = checkTty(tty, this.ctx.identity.permits.pty, this.log);
    if (accepted) this.ttySpec = accepted;
    return accepted !== null;
  }

  /** True when the variable was accepted (the accept list, REQUEST_LIMITS). */
  setEnv(name: string, value: string): boolean {
    if (this.phaseNow !== 'setup') {
      this.log.debug({ name: String(name).slice(0, 64) }, 'env request refused (not in accept list)');
      return false;
    }
    return this.env.set(name, value);
  }

  /** Whether a run request may still start this session (one per session). */
  get startable(): boolean {
    return this.phaseNow === 'setup';
  }

  resize(size: TerminalSize): void {
    // `ssh -tt` without a local terminal sends 0x0: unknown, never a real size.
    if (size.cols <= 0 || size.rows <= 0) return;
    if (this.ttySpec) this.ttySpec = { ...this.ttySpec, cols: size.cols, rows: size.rows };
    this.tap?.resize(size);
    if (this.process) this.process.resize(size);
    else this.pendingSize = size;
  }

  /** A signal by name (INT, TERM; a SIG prefix is dropped) to the process group. */
  signal(raw: string): void {
    const name = String(raw).replace(/^SIG/, '');
    this.log.info({ signal: name }, 'signal request');
    if (this.process) this.process.signal(name);
    else if (this.phaseNow === 'opening' && this.pendingSignals.length < 8) this.pendingSignals.push(name);
  }

  /**
   * Runs `request` with `input` (the client's bytes) and `sink` (the client's screen). The sftp
   * subsystem never runs through a terminal.
   */
  start(sink: SessionSink, input: Readable, request: RunRequest): void {
    if (this.phaseNow !== 'setup') return;
    if (request.kind === 'subsystem') this.ttySpec = null; // sftp is a binary protocol
    const kind = runKind(request);
    this.sink = sink;
    this.phaseNow = 'opening';
    this.tap = this.ctx.taps?.start({ kind, tty: this.ttySpec }) ?? null;
    let refusal: BridgeError | null = null;
    if (request.kind === 'exec') {
      const bytes = Buffer.byteLength(request.command);
      if (bytes > REQUEST_LIMITS.commandBytes) {
        this.log.warn({ bytes, limit: REQUEST_LIMITS.commandBytes }, 'exec refused: command too long');
        refusal = new BridgeError('limit', `command too long (${bytes} bytes; at most ${REQUEST_LIMITS.commandBytes}): pass large input on stdin instead`);
      }
    }
    void (refusal ? this.fail(sink, refusal) : this.run(sink, input, request))
      .catch((err: unknown) => {
        this.log.error({ err }, 'session failed unexpectedly');
        return this.finish(sink, { kind: 'error', error: toBridgeError(err) });
      })
      .finally(() => {
        this.tap?.ended(null);
        this.clearTimers();
        this.resolveClosed();
      });
  }

  /** The client went away for good (channel closed, network drop, a browser past its grace). */
  clientGone(reason: string): void {
    if (this.gone) return;
    this.gone = true;
    this.abort.abort();
    this.clearTimers();
    if (this.phaseNow === 'running' && this.process) {
      this.log.info({ reason }, 'client gone before the process exited; terminating it');
      void this.process.terminate(reason);
    } else if (this.phaseNow === 'setup' || this.phaseNow === 'done') {
      this.resolveClosed();
    }
  }

  /**
   * A notice from the bridge (idle or duration warning, shutdown, a protocol limit), without
   * ending anything. The rule (docs/lifecycle.md, "What the bridge says"): always in the log; on
   * the user's terminal only in a TTY session, at a line boundary. A command without a TTY gets
   * no bridge text in its stderr except the one final line when the bridge ends it with 255:
   * scripts compare stderr, and kubectl prints nothing there either.
   */
  notify(message: string): void {
    this.log.info({ notice: message, shown: this.ttySpec !== null }, 'notice');
    const sink = this.sink;
    if (!sink || this.gone || this.phaseNow === 'done' || this.ttySpec === null) return;
    sink.line(message, 'notice');
  }

  /** Ends the session from the bridge's side: the process is terminated, the user told why. */
  async end(reason: string): Promise<void> {
    if (this.phaseNow === 'done' || this.gone) return this.closed;
    this.endReason = reason;
    if (this.process) await this.process.terminate(reason);
    else if (this.phaseNow === 'setup') {
      this.gone = true;
      this.resolveClosed();
    }
    return this.closed;
  }

  private async run(sink: SessionSink, input: Readable, request: RunRequest): Promise<void> {
    const { target, backend, identity, events, policy } = this.ctx;
    if (target instanceof BridgeError) return this.fail(sink, target);
    const kind = runKind(request);
    // A forced command (command= on the key, a certificate's force-command) replaces what was asked.
    const plan = planSession(identity, request);
    const runCommand = plan.command ?? (request.kind === 'subsystem' ? SFTP_SERVER_COMMAND : null);
    const spec: ProcessSpec = { command: runCommand, tty: this.ttySpec, env: { ...this.env.values, ...plan.env } };
    const started = Date.now();
    const targetName = formatTarget(target);

    // Authorized twice: on the login name before any API call, and on the pod and container it
    // resolved to before anything runs there. Each reads the policy in force at that moment.
    const base = { target: { ...target, namespace: target.namespace ?? backend.defaultNamespace }, action: plan.action, tty: spec.tty !== null };
    const check = (req: AccessRequest): Decision => authorize(policy.current(), identity, req);
    const denial = (d: Extract<Decision, { allowed: false }>): BridgeError => {
      events.audit({ event: 'denied', identity: identity.name, target: targetName, reason: d.message });
      return new BridgeError('denied', d.message, { detail: { reason: d.reason, rule: d.rule } });
    };
    const first = check({ ...base, container: target.container });
    if (!first.allowed && !first.pending) return this.fail(sink, denial(first));
    const authorizeResolved = (place: ResolvedPlace) => {
      const d = check({ ...base, container: place.container, podName: place.pod, docker: place.docker });
      if (!d.allowed) return denial(d);
      this.resolvedPlace = place;
      return null;
    };
    // What ran and why: the forced command (not what the client typed), and for sftp the
    // subsystem's name (not the launcher script that finds sftp-server in the image).
    const ran = { command: plan.command, subsystem: request.kind === 'subsystem' ? 'sftp' : undefined, forced: plan.forced ? identity.source.kind : (false as const), requested: plan.forced ? (plan.env.SSH_ORIGINAL_COMMAND ?? null) : undefined };
    this.log.info({ target: targetName, kind, ...ran, forced: ran.forced || undefined, tty: spec.tty ? `${spec.tty.cols}x${spec.tty.rows} ${spec.tty.term}` : null }, 'session start');
    events.audit({ event: 'session-start', identity: identity.name, target: targetName, kind, ...ran, tty: spec.tty !== null });

    const refused = this.tap?.beforeOpen({ conn: events.conn, remote: events.remote, identity: identity.name, target: targetName, command: runCommand });
    if (refused) return this.fail(sink, refused);
    let proc: RemoteProcess;
    try {
      proc = await backend.open(target, spec, { identity, log: this.log, authorizeResolved });
    } catch (err) {
      return this.fail(sink, toBridgeError(err));
    }
    if (this.gone || this.endReason) {
      this.log.info({ reason: this.endReason ?? 'client disconnected' }, 'session ended while the process was starting; terminating it');
      await proc.terminate(this.endReason ?? 'client disconnected during start');
      if (this.gone) return;
    }
    this.process = proc;
    this.phaseNow = 'running';
    if (this.pendingSize) proc.resize(this.pendingSize);
    this.pendingSize = null;
    for (const name of this.pendingSignals.splice(0)) proc.signal(name);
    this.startTimers();
    this.tap?.opened({ stdout: proc.stdout, stderr: proc.stderr, input }, (reason) => void this.end(reason));
    if (this.ctx.motd && request.kind === 'shell' && spec.tty) sink.stdout.write(this.ctx.motd.replace(/\r?\n/g, '\r\n'));

    const signal = this.abort.signal;
    const onData = () => (this.lastActivity = Date.now());
    const stdout = pump(proc.stdout, sink.stdout, { end: false, signal, onData });
    const stderr = proc.stderr ? pump(proc.stderr, sink.stderr, { end: false, signal, onData }) : Promise.resolve('ended');
    // With a terminal, sshd never passes the client's EOF on (a pty cannot be half-closed): match it.
    let sftpDone = false;
    void pump(input, proc.stdin, { end: spec.tty === null, signal, onData }).then((result) => {
      if (result !== 'ended' || spec.tty !== null || proc.canCloseStdin) return;
      if (request.kind === 'subsystem') {
        // sftp is request/response: once the client sent EOF every answer was already written, so
        // ending sftp-server loses nothing, where waiting for an EOF that cannot come would hang.
        sftpDone = true;
        void sink.flushed(signal).then(() => proc.terminate(`sftp client finished (no stdin EOF over ${proc.protocol ?? 'this exec protocol'})`));
      } else {
        // Most commands never read stdin and end on their own; speak up only for one that lingers.
        // The log only, also with a TTY (where EOF is never passed on anyway): see notify().
        const timer = setTimeout(() => {
          this.log.info(
            { protocol: proc.protocol },
            `stdin EOF cannot be delivered over ${proc.protocol ?? 'this exec protocol'} and the command is still running; if it waits for more input, it ends only when the client closes the session`,
          );
        }, V4_EOF_NOTICE_MS);
        this.timers.push(timer);
      }
    });

    let exit = await proc.exited;
    await Promise.all([stdout, stderr]);
    if (this.endReason) exit = { kind: 'error', error: new BridgeError('session-ended', `session ended: ${this.endReason}`) };
    else if (sftpDone) exit = { kind: 'code', code: 0 };
    const durationMs = Date.now() - started;
    this.log.info({ target: targetName, exit: describeExit(exit), ms: durationMs }, 'session end');
    events.audit({ event: 'session-end', identity: identity.name, target: targetName, kind, exit: describeExit(exit), durationMs });
    await this.finish(sink, exit);
  }

  private startTimers(): void {
    const { idleTimeoutMs, maxDurationMs, warningMs } = this.ctx.timeouts;
    if (maxDurationMs > 0) {
      const limit = formatDuration(maxDurationMs);
      this.maxDuration = new Deadline(
        maxDurationMs,
        warningMs,
        () => this.notify(`this session reaches its maximum duration (${limit}) in ${formatDuration(warningMs)}`),
        () => void this.end(`maximum session duration (${limit}) reached`),
      );
    }
    if (idleTimeoutMs > 0) {
      let warned = false;
      // One Timeout, re-armed after each look: a new one per look, kept in `timers`, grew the
      // session by one Timeout a second for its whole life.
      const idleCheck: NodeJS.Timeout = setTimeout(() => {
        const idle = Date.now() - this.lastActivity;
        if (idle >= idleTimeoutMs) return void this.end(`idle for ${formatDuration(idleTimeoutMs)}`);
        if (!warned && warningMs > 0 && idle >= idleTimeoutMs - warningMs) {
          warned = true;
          this.notify(`idle session; it ends in ${formatDuration(idleTimeoutMs - idle)} unless there is activity`);
        } else if (idle < idleTimeoutMs - warningMs) warned = false;
        // refresh() would re-arm a cleared timer: not once the session is over (its timers are
        // cleared then: the client gone, or the session done).
        if (!this.gone && this.phaseNow !== 'done') idleCheck.refresh();
      }, Math.min(1000, idleTimeoutMs / 4));
      this.timers.push(idleCheck);
    }
  }

  private clearTimers(): void {
    this.maxDuration?.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }

  private async fail(sink: SessionSink, err: BridgeError): Promise<void> {
    this.log.warn({ code: err.code, detail: err.detail, cause: err.cause instanceof Error ? err.cause.message : undefined }, err.message);
    await this.finish(sink, { kind: 'error', error: err });
  }

  /** Flush, then the exit: a door may drop anything said after it closes. */
  private async finish(sink: SessionSink, exit: Exit): Promise<void> {
    if (this.phaseNow === 'done') return;
    this.phaseNow = 'done';
    this.tap?.ended(exit);
    if (this.gone) return;
    // The one bridge line every session may get, TTY or not: why the bridge ended it (status 255).
    if (exit.kind === 'error') sink.line(exit.error.message, 'error');
    await sink.flushed(this.abort.signal);
    if (this.gone) return;
    sink.exit(exit);
  }
}

export function describeExit(exit: Exit): string {
  if (exit.kind === 'code') return `status ${exit.code}`;
  if (exit.kind === 'signal') return `signal ${exit.signal}`;
  return `error ${exit.error.code}: ${exit.error.message}`;
}

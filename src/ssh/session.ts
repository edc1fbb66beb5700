/**
 * One SSH session channel: collects pty-req and env, turns shell/exec/subsystem into one
 * RemoteProcess, forwards window-change and signal, enforces idle and duration limits, and owns
 * teardown order: all output flushed -> exit-status (or exit-signal) -> EOF -> close. Nothing
 * about a particular backend lives here.
 */
import os from 'node:os';
import type { ServerChannel, Session as SshSession, PseudoTtyInfo, WindowChangeInfo } from 'ssh2';
import type { AuditEvent } from '../audit.ts';
import type { Backend, Exit, ProcessSpec, RemoteProcess, ResolvedPlace, TerminalSize, TtySpec } from '../backends/backend.ts';
import { envAccepted } from '../env-patterns.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import type { Identity } from '../identity.ts';
import type { Logger } from '../log.ts';
import { pump } from '../pipe.ts';
import { ChannelOutput } from './channel-output.ts';
import { authorize, planSession, type AccessRequest, type Decision, type PolicySource, type SshRequest } from '../policy/index.ts';
import { formatTarget, type Target } from '../target.ts';
import type { SessionTap, SessionTaps } from '../ops/session-tap.ts';
import { REFUSED } from '../forwarding/refusals.ts';

/** Exit status for failures of the bridge itself (no pod, forbidden, stream lost), like ssh's own 255. */
export const BRIDGE_FAILURE_STATUS = 255;

/** Finds the image's sftp-server, as sshd's `Subsystem sftp` would run it. */
export const SFTP_SERVER_COMMAND = [
  'for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server;',
  'do [ -x "$p" ] && exec "$p"; done;',
  'command -v sftp-server >/dev/null 2>&1 && exec sftp-server;',
  // busybox images have neither sftp-server nor scp; tar over ssh works wherever stdin EOF arrives.
  'echo "podbridge: no sftp-server in this container; install openssh-sftp-server in the image, or copy with tar: tar c FILES | ssh TARGET \'tar x -C DIR\' (scp -O works where the image has scp)" >&2; exit 127',
].join(' ');

/**
 * What one session may make the bridge hold before anything runs (docs/security.md adds these up
 * per connection). ssh2 caps a packet at 35000 bytes, so one request is small; it is the number
 * of requests that must be bounded: env requests were stored without limit, and a client could
 * fill the bridge's heap with LC_* variables before any authorization. sshd refuses env beyond
 * 128 variables too.
 */
export const REQUEST_LIMITS = Object.freeze({
  envVars: 128,
  /** Names plus values of the accepted variables. */
  envBytes: 64 * 1024,
  termBytes: 128,
  commandBytes: 32 * 1024,
  subsystemBytes: 64,
});

/** How long a command may run on after a client EOF that v4 cannot deliver before the user is told. */
const V4_EOF_NOTICE_MS = 3000;

export interface SessionTimeouts {
  idleTimeoutMs: number;
  maxDurationMs: number;
  warningMs: number;
}

export interface SessionContext {
  backend: Backend;
  policy: PolicySource;
  /** The parsed login name, or why no session can start here (a bad login name, a credential
   *  the policy no longer accepts, a connection cap), reported when the session starts. */
  target: Target | BridgeError;
  identity: Identity;
  acceptEnv: readonly string[];
  timeouts: SessionTimeouts;
  motd: string | null;
  log: Logger;
  audit: { emit(e: AuditEvent): void; conn: string; remote: string };
  /** Listeners (metrics, recording) called at the session's turning points; see ops/session-tap.ts. */
  taps?: SessionTaps;
}

type Phase = 'setup' | 'opening' | 'running' | 'done';

export class Session {
  private tty: TtySpec | null = null;
  private readonly env: Record<string, string> = {};
  private envBytes = 0;
  /** The first refusal beyond a cap is a warning; the flood after it is debug. */
  private capWarned = false;
  /** The latest window-change not yet applied (arrived while the process was being opened). */
  private pendingSize: TerminalSize | null = null;
  /** Signals that arrived while the process was being opened (a Ctrl-C at a slow start). */
  private readonly pendingSignals: string[] = [];
  private phase: Phase = 'setup';
  private process: RemoteProcess | null = null;
  /** Every byte for the client leaves through this, the command's and the bridge's alike. */
  private output: ChannelOutput | null = null;
  private tap: SessionTap | null = null;
  private readonly abort = new AbortController();
  private clientGone = false;
  /** Why the bridge ended the session itself (timeout, shutdown); reported instead of the exit. */
  private endReason: string | null = null;
  private lastActivity = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly log: Logger;
  private resolveClosed!: () => void;
  /** Resolves once the session is over and its process is gone. */
  readonly closed = new Promise<void>((r) => (this.resolveClosed = r));
  private resolveDelivered!: () => void;
  /** Resolves once the client closed the channel, i.e. it has everything we sent (OpenSSH
   *  closes only after writing out what it holds), or is gone. Cutting the connection before
   *  that (a shutdown) makes the client drop output it still holds. */
  readonly delivered = new Promise<void>((r) => (this.resolveDelivered = r));

  constructor(
    ssh: SshSession,
    private readonly ctx: SessionContext,
  ) {
    this.log = ctx.log;
    ssh.on('pty', (accept, reject, info: PseudoTtyInfo) => {
      if (this.phase !== 'setup') return reject?.();
      // no-pty (authorized_keys) or a certificate without permit-pty: refuse the pty as sshd does;
      // the session goes on without one.
      if (!ctx.identity.permits.pty) {
        this.log.info('pty refused: the credential does not permit a pty');
        return reject?.();
      }
      if (Buffer.byteLength(info.term ?? '') > REQUEST_LIMITS.termBytes) {
        this.log.warn({ bytes: Buffer.byteLength(info.term), limit: REQUEST_LIMITS.termBytes }, 'pty refused: terminal name too long');
        return reject?.();
      }
      this.tty = { term: info.term || 'xterm', cols: info.cols, rows: info.rows };
      accept?.();
    });
    ssh.on('env', (accept, reject, info) => {
      // Only names on the accept list, as sshd's AcceptEnv: PATH or LD_PRELOAD must never be set.
      if (!(this.phase === 'setup' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(info.key) && envAccepted(info.key, ctx.acceptEnv))) {
        this.log.debug({ name: String(info.key).slice(0, 64) }, 'env request refused (not in accept list)');
        return reject?.();
      }
      const previous = Object.hasOwn(this.env, info.key) ? Buffer.byteLength(info.key) + Buffer.byteLength(this.env[info.key]!) : 0;
      const bytes = this.envBytes - previous + Buffer.byteLength(info.key) + Buffer.byteLength(info.val);
      const count = Object.keys(this.env).length + (previous > 0 ? 0 : 1);
      if (count > REQUEST_LIMITS.envVars || bytes > REQUEST_LIMITS.envBytes) {
        const fields = { name: info.key, vars: count - 1, bytes: this.envBytes, limits: `${REQUEST_LIMITS.envVars} variables, ${REQUEST_LIMITS.envBytes} bytes` };
        this.log[this.capWarned ? 'debug' : 'warn'](fields, 'env request refused: over the per-session cap');
        this.capWarned = true;
        return reject?.();
      }
      this.env[info.key] = info.val;
      this.envBytes = bytes;
      accept?.();
    });
    ssh.on('window-change', (accept, _reject, info: WindowChangeInfo) => {
      accept?.();
      this.onResize({ cols: info.cols, rows: info.rows });
    });
    ssh.on('signal', (accept, _reject, info) => {
      accept?.();
      const name = String(info.name).replace(/^SIG/, '');
      this.log.info({ signal: name }, 'signal request');
      if (this.process) this.process.signal(name);
      else if (this.phase === 'opening' && this.pendingSignals.length < 8) this.pendingSignals.push(name);
    });
    ssh.on('shell', (accept, reject) => this.start(accept, reject, null, 'shell'));
    ssh.on('exec', (accept, reject, info) => {
      const bytes = Buffer.byteLength(info.command);
      if (bytes > REQUEST_LIMITS.commandBytes) {
        this.log.warn({ bytes, limit: REQUEST_LIMITS.commandBytes }, 'exec refused: command too long');
        const tooLong = new BridgeError('limit', `command too long (${bytes} bytes; at most ${REQUEST_LIMITS.commandBytes}): pass large input on stdin instead`);
        return this.start(accept, reject, null, 'exec', tooLong);
      }
      this.start(accept, reject, info.command, 'exec');
    });
    ssh.on('subsystem', (accept, reject, info) => {
      if (info.name !== 'sftp') {
        this.log.info({ subsystem: String(info.name).slice(0, REQUEST_LIMITS.subsystemBytes) }, 'unknown subsystem refused');
        return reject?.();
      }
      this.tty = null; // sftp is a binary protocol: never through a terminal
      this.start(accept, reject, SFTP_SERVER_COMMAND, 'subsystem:sftp');
    });
    ssh.on('auth-agent', (_accept, reject) => {
      this.log.info(REFUSED.agent);
      reject?.();
    });
    ssh.on('x11', (_accept, reject) => {
      this.log.info(REFUSED.x11);
      reject?.();
    });
    ssh.on('close', () => this.onClientGone('session channel closed'));
  }

  /** The client went away (channel closed, network drop, client killed). */
  onClientGone(reason: string): void {
    this.resolveDelivered();
    if (this.clientGone) return;
    this.clientGone = true;
    this.abort.abort();
    this.clearTimers();
    if (this.phase === 'running' && this.process) {
      this.log.info({ reason }, 'client gone before the process exited; terminating it');
      void this.process.terminate(reason);
    } else if (this.phase === 'setup' || this.phase === 'done') {
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
    this.log.info({ notice: message, shown: this.tty !== null }, 'notice');
    const out = this.output;
    if (!out || this.clientGone || this.phase === 'done' || this.tty === null) return;
    out.line(`podbridge: ${message}`);
  }

  /** Ends the session from the bridge's side: the process is terminated, the user told why. */
  async end(reason: string): Promise<void> {
    if (this.phase === 'done' || this.clientGone) return this.closed;
    this.endReason = reason;
    if (this.process) await this.process.terminate(reason);
    else if (this.phase === 'setup') {
      this.clientGone = true;
      this.resolveClosed();
    }
    return this.closed;
  }

  private onResize(size: TerminalSize): void {
    // `ssh -tt` without a local terminal sends 0x0: unknown, never a real size.
    if (size.cols <= 0 || size.rows <= 0) return;
    if (this.tty) this.tty = { ...this.tty, cols: size.cols, rows: size.rows };
    this.tap?.resize(size);
    if (this.process) this.process.resize(size);
    else this.pendingSize = size;
  }

  private start(
    accept: () => ServerChannel | undefined,
    reject: (() => void) | undefined,
    command: string | null,
    kind: string,
    refusal?: BridgeError,
  ): void {
    if (this.phase !== 'setup') return reject?.();
    const channel = accept();
    if (!channel) return;
    const output = new ChannelOutput(channel, this.tty !== null);
    this.output = output;
    this.phase = 'opening';
    this.tap = this.ctx.taps?.start({ kind, tty: this.tty }) ?? null;
    channel.on('error', (err: Error) => this.log.debug({ err: err.message }, 'channel error'));
    channel.stderr.on('error', () => {});
    void (refusal ? this.fail(channel, output, refusal) : this.run(channel, output, command, kind))
      .catch((err: unknown) => {
        this.log.error({ err }, 'session failed unexpectedly');
        return this.finish(channel, output, { kind: 'error', error: toBridgeError(err) });
      })
      .finally(() => {
        this.tap?.ended(null);
        this.clearTimers();
        this.resolveClosed();
      });
  }

  private async run(channel: ServerChannel, output: ChannelOutput, command: string | null, kind: string): Promise<void> {
    const { target, backend, identity, audit, policy } = this.ctx;
    if (target instanceof BridgeError) return this.fail(channel, output, target);
    const request: SshRequest = kind === 'shell' ? { kind: 'shell' } : kind === 'exec' ? { kind: 'exec', command: command ?? '' } : { kind: 'subsystem', name: 'sftp' };
    // A forced command (command= on the key, a certificate's force-command) replaces what was asked.
    const plan = planSession(identity, request);
    const runCommand = plan.command ?? (kind === 'subsystem:sftp' ? SFTP_SERVER_COMMAND : null);
    const spec: ProcessSpec = { command: runCommand, tty: this.tty, env: { ...this.env, ...plan.env } };
    const started = Date.now();
    const targetName = formatTarget(target);

    // Authorized twice: on the login name before any API call, and on the pod and container it
    // resolved to before anything runs there. Each reads the policy in force at that moment.
    const base = { target: { ...target, namespace: target.namespace ?? backend.defaultNamespace }, action: plan.action, tty: spec.tty !== null };
    const check = (req: AccessRequest): Decision => authorize(policy.current(), identity, req);
    const denial = (d: Extract<Decision, { allowed: false }>): BridgeError => {
      audit.emit({ event: 'denied', conn: audit.conn, remote: audit.remote, identity: identity.name, target: targetName, reason: d.message });
      return new BridgeError('denied', d.message, { detail: { reason: d.reason, rule: d.rule } });
    };
    const first = check({ ...base, container: target.container });
    if (!first.allowed && !first.pending) return this.fail(channel, output, denial(first));
    const authorizeResolved = (place: ResolvedPlace) => {
      const d = check({ ...base, container: place.container, podName: place.pod, docker: place.docker });
      return d.allowed ? null : denial(d);
    };
    // What ran and why: the forced command (not what the client typed), and for sftp the
    // subsystem's name (not the launcher script that finds sftp-server in the image).
    const ran = { command: plan.command, subsystem: kind === 'subsystem:sftp' ? 'sftp' : undefined, forced: plan.forced ? identity.source.kind : (false as const), requested: plan.forced ? (plan.env.SSH_ORIGINAL_COMMAND ?? null) : undefined };
    this.log.info({ target: targetName, kind, ...ran, forced: ran.forced || undefined, tty: spec.tty ? `${spec.tty.cols}x${spec.tty.rows} ${spec.tty.term}` : null }, 'session start');
    audit.emit({ event: 'session-start', conn: audit.conn, remote: audit.remote, identity: identity.name, target: targetName, kind, ...ran, tty: spec.tty !== null });

    const refused = this.tap?.beforeOpen({ conn: audit.conn, remote: audit.remote, identity: identity.name, target: targetName, command: runCommand });
    if (refused) return this.fail(channel, output, refused);
    let proc: RemoteProcess;
    try {
      proc = await backend.open(target, spec, { identity, log: this.log, authorizeResolved });
    } catch (err) {
      return this.fail(channel, output, toBridgeError(err));
    }
    if (this.clientGone || this.endReason) {
      this.log.info({ reason: this.endReason ?? 'client disconnected' }, 'session ended while the process was starting; terminating it');
      await proc.terminate(this.endReason ?? 'client disconnected during start');
      if (this.clientGone) return;
    }
    this.process = proc;
    this.phase = 'running';
    if (this.pendingSize) proc.resize(this.pendingSize);
    this.pendingSize = null;
    for (const name of this.pendingSignals.splice(0)) proc.signal(name);
    this.startTimers();
    this.tap?.opened({ stdout: proc.stdout, stderr: proc.stderr, input: channel }, (reason) => void this.end(reason));
    if (this.ctx.motd && command === null && spec.tty) output.stdout.write(this.ctx.motd.replace(/\r?\n/g, '\r\n'));

    const signal = this.abort.signal;
    const onData = () => (this.lastActivity = Date.now());
    const stdout = pump(proc.stdout, output.stdout, { end: false, signal, onData });
    const stderr = proc.stderr ? pump(proc.stderr, output.stderr, { end: false, signal, onData }) : Promise.resolve('ended');
    // With a terminal, sshd never passes the client's EOF on (a pty cannot be half-closed): match it.
    let sftpDone = false;
    void pump(channel, proc.stdin, { end: spec.tty === null, signal, onData }).then((result) => {
      if (result !== 'ended' || spec.tty !== null || proc.canCloseStdin) return;
      if (kind === 'subsystem:sftp') {
        // sftp is request/response: once the client sent EOF every answer was already written, so
        // ending sftp-server loses nothing, where waiting for an EOF that cannot come would hang.
        sftpDone = true;
        void output.flushed(signal).then(() => proc.terminate(`sftp client finished (no stdin EOF over ${proc.protocol ?? 'this exec protocol'})`));
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
    audit.emit({ event: 'session-end', conn: audit.conn, remote: audit.remote, identity: identity.name, target: targetName, kind, exit: describeExit(exit), durationMs });
    await this.finish(channel, output, exit);
  }

  private startTimers(): void {
    const { idleTimeoutMs, maxDurationMs, warningMs } = this.ctx.timeouts;
    if (maxDurationMs > 0) {
      const limit = formatDuration(maxDurationMs);
      if (maxDurationMs > warningMs && warningMs > 0) {
        this.timers.push(setTimeout(() => this.notify(`this session reaches its maximum duration (${limit}) in ${formatDuration(warningMs)}`), maxDurationMs - warningMs));
      }
      this.timers.push(setTimeout(() => void this.end(`maximum session duration (${limit}) reached`), maxDurationMs));
    }
    if (idleTimeoutMs > 0) {
      let warned = false;
      const check = () => {
        const idle = Date.now() - this.lastActivity;
        if (idle >= idleTimeoutMs) return void this.end(`idle for ${formatDuration(idleTimeoutMs)}`);
        if (!warned && warningMs > 0 && idle >= idleTimeoutMs - warningMs) {
          warned = true;
          this.notify(`idle session; it ends in ${formatDuration(idleTimeoutMs - idle)} unless there is activity`);
        } else if (idle < idleTimeoutMs - warningMs) warned = false;
        this.timers.push(setTimeout(check, Math.min(1000, idleTimeoutMs / 4)));
      };
      this.timers.push(setTimeout(check, Math.min(1000, idleTimeoutMs / 4)));
    }
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.length = 0;
  }

  private async fail(channel: ServerChannel, output: ChannelOutput, err: BridgeError): Promise<void> {
    this.log.warn({ code: err.code, detail: err.detail, cause: err.cause instanceof Error ? err.cause.message : undefined }, err.message);
    await this.finish(channel, output, { kind: 'error', error: err });
  }

  /** Flush, then exit-status, then EOF and close: after end() ssh2 silently drops the status. */
  private async finish(channel: ServerChannel, output: ChannelOutput, exit: Exit): Promise<void> {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.tap?.ended(exit);
    if (this.clientGone) return;
    // The one bridge line every session may get, TTY or not: why the bridge ended it (status 255).
    if (exit.kind === 'error') output.line(`podbridge: ${exit.error.message}`);
    await output.flushed(this.abort.signal);
    if (this.clientGone) return;
    if (exit.kind === 'code') channel.exit(exit.code);
    else if (exit.kind === 'signal') sendExitSignal(channel, exit.signal, exit.coreDumped);
    else channel.exit(BRIDGE_FAILURE_STATUS);
    channel.end();
  }
}

/** RFC 4254 names only a few signals; for the rest report 128+N as a shell would. */
function sendExitSignal(channel: ServerChannel, signal: string, coreDumped: boolean): void {
  try {
    channel.exit(signal, coreDumped, '');
  } catch {
    const signo = (os.constants.signals as Record<string, number>)[`SIG${signal}`];
    channel.exit(signo ? 128 + signo : BRIDGE_FAILURE_STATUS);
  }
}

/** `45 s`, `12 min`, `2 h 30 min`: how people read a limit. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.floor(min / 60);
  return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
}

function describeExit(exit: Exit): string {
  if (exit.kind === 'code') return `status ${exit.code}`;
  if (exit.kind === 'signal') return `signal ${exit.signal}`;
  return `error ${exit.error.code}: ${exit.error.message}`;
}

/**
 * One SSH session channel: collects pty-req and env, turns shell/exec/subsystem into one
 * RemoteProcess, forwards window-change and signal, enforces idle and duration limits, and owns
 * teardown order: all output flushed -> exit-status (or exit-signal) -> EOF -> close. Nothing
 * about a particular backend lives here.
 */
import os from 'node:os';
import type { ServerChannel, Session as SshSession, PseudoTtyInfo, WindowChangeInfo } from 'ssh2';
import type { AuditEvent } from '../audit.ts';
import type { Backend, Exit, ProcessSpec, RemoteProcess, TerminalSize, TtySpec } from '../backends/backend.ts';
import { envAccepted } from '../config.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import type { Identity } from '../identity.ts';
import type { Logger } from '../log.ts';
import { flushed, pump } from '../pipe.ts';
import { authorize, planSession, type AccessRequest, type Decision, type PolicySource, type SshRequest } from '../policy/index.ts';
import { formatTarget, type Target } from '../target.ts';
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
  /** The parsed login name, or why it could not be parsed (reported when the session starts). */
  target: Target | BridgeError;
  identity: Identity;
  acceptEnv: readonly string[];
  timeouts: SessionTimeouts;
  motd: string | null;
  log: Logger;
  audit: { emit(e: AuditEvent): void; conn: string; remote: string };
}

type Phase = 'setup' | 'opening' | 'running' | 'done';

export class Session {
  private tty: TtySpec | null = null;
  private readonly env: Record<string, string> = {};
  /** The latest window-change not yet applied (arrived while the process was being opened). */
  private pendingSize: TerminalSize | null = null;
  /** Signals that arrived while the process was being opened (a Ctrl-C at a slow start). */
  private readonly pendingSignals: string[] = [];
  private phase: Phase = 'setup';
  private process: RemoteProcess | null = null;
  private channel: ServerChannel | null = null;
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
      this.tty = { term: info.term || 'xterm', cols: info.cols, rows: info.rows };
      accept?.();
    });
    ssh.on('env', (accept, reject, info) => {
      // Only names on the accept list, as sshd's AcceptEnv: PATH or LD_PRELOAD must never be set.
      if (this.phase === 'setup' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(info.key) && envAccepted(info.key, ctx.acceptEnv)) {
        this.env[info.key] = info.val;
        return accept?.();
      }
      this.log.debug({ name: info.key }, 'env request refused (not in accept list)');
      reject?.();
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
    ssh.on('exec', (accept, reject, info) => this.start(accept, reject, info.command, 'exec'));
    ssh.on('subsystem', (accept, reject, info) => {
      if (info.name !== 'sftp') {
        this.log.info({ subsystem: info.name }, 'unknown subsystem refused');
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

  /** One line on the user's stderr, without ending anything. */
  notify(message: string): void {
    const ch = this.channel;
    if (!ch || this.clientGone || this.phase === 'done') return;
    // On a terminal start a fresh line: the message must not glue onto a prompt.
    ch.stderr.write(this.tty ? `\r\npodbridge: ${message}\r\n` : `podbridge: ${message}\n`);
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
    if (this.process) this.process.resize(size);
    else this.pendingSize = size;
  }

  private start(
    accept: () => ServerChannel | undefined,
    reject: (() => void) | undefined,
    command: string | null,
    kind: string,
  ): void {
    if (this.phase !== 'setup') return reject?.();
    const channel = accept();
    if (!channel) return;
    this.channel = channel;
    this.phase = 'opening';
    channel.on('error', (err: Error) => this.log.debug({ err: err.message }, 'channel error'));
    channel.stderr.on('error', () => {});
    void this.run(channel, command, kind)
      .catch((err: unknown) => {
        this.log.error({ err }, 'session failed unexpectedly');
        return this.finish(channel, { kind: 'error', error: toBridgeError(err) });
      })
      .finally(() => {
        this.clearTimers();
        this.resolveClosed();
      });
  }

  private async run(channel: ServerChannel, command: string | null, kind: string): Promise<void> {
    const { target, backend, identity, audit, policy } = this.ctx;
    if (target instanceof BridgeError) return this.fail(channel, target);
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
    if (!first.allowed && !first.pending) return this.fail(channel, denial(first));
    const authorizeResolved = (place: { pod: string; container: string }) => {
      const d = check({ ...base, container: place.container, podName: place.pod });
      return d.allowed ? null : denial(d);
    };
    this.log.info(
      { target: targetName, kind, command, forced: plan.forced || undefined, tty: spec.tty ? `${spec.tty.cols}x${spec.tty.rows} ${spec.tty.term}` : null },
      'session start',
    );
    audit.emit({ event: 'session-start', conn: audit.conn, remote: audit.remote, identity: identity.name, target: targetName, kind, command, tty: spec.tty !== null });

    let proc: RemoteProcess;
    try {
      proc = await backend.open(target, spec, { identity, log: this.log, authorizeResolved });
    } catch (err) {
      return this.fail(channel, toBridgeError(err));
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
    if (this.ctx.motd && command === null && spec.tty) channel.write(this.ctx.motd.replace(/\r?\n/g, '\r\n'));

    const signal = this.abort.signal;
    const onData = () => (this.lastActivity = Date.now());
    const stdout = pump(proc.stdout, channel, { end: false, signal, onData });
    const stderr = proc.stderr ? pump(proc.stderr, channel.stderr, { end: false, signal, onData }) : Promise.resolve('ended');
    // With a terminal, sshd never passes the client's EOF on (a pty cannot be half-closed): match it.
    let sftpDone = false;
    void pump(channel, proc.stdin, { end: spec.tty === null, signal, onData }).then((result) => {
      if (result !== 'ended' || spec.tty !== null || proc.canCloseStdin) return;
      if (kind === 'subsystem:sftp') {
        // sftp is request/response: once the client sent EOF every answer was already written, so
        // ending sftp-server loses nothing, where waiting for an EOF that cannot come would hang.
        sftpDone = true;
        void flushed(channel, signal).then(() => proc.terminate('sftp client finished (no stdin EOF on this API server)'));
      } else {
        // Most commands never read stdin and end on their own; speak up only for one that lingers.
        const timer = setTimeout(() => {
          this.log.info('stdin EOF cannot be delivered (Kubernetes exec v4) and the command is still running');
          this.notify(`exec protocol ${proc.protocol ?? 'v4.channel.k8s.io over WebSocket'} cannot pass end-of-input to the command; if it waits for more input, end it by closing ssh`);
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
    await this.finish(channel, exit);
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

  private async fail(channel: ServerChannel, err: BridgeError): Promise<void> {
    this.log.warn({ code: err.code, detail: err.detail, cause: err.cause instanceof Error ? err.cause.message : undefined }, err.message);
    await this.finish(channel, { kind: 'error', error: err });
  }

  /** Flush, then exit-status, then EOF and close: after end() ssh2 silently drops the status. */
  private async finish(channel: ServerChannel, exit: Exit): Promise<void> {
    if (this.phase === 'done') return;
    this.phase = 'done';
    if (this.clientGone) return;
    const signal = this.abort.signal;
    if (exit.kind === 'error') {
      const eol = this.tty ? '\r\n' : '\n';
      channel.stderr.write(`podbridge: ${exit.error.message}${eol}`);
    }
    await Promise.all([flushed(channel, signal), flushed(channel.stderr, signal)]);
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

/**
 * One SSH session channel: the SSH front door of the session core (src/session/core.ts). It turns
 * ssh2's requests (pty-req, env, window-change, signal, shell/exec/subsystem) into core calls and
 * owns the SSH end of teardown: all output flushed -> exit-status (or exit-signal) -> EOF -> close.
 */
import os from 'node:os';
import type { ServerChannel, Session as SshSession, PseudoTtyInfo, WindowChangeInfo } from 'ssh2';
import type { Exit } from '../backends/backend.ts';
import { BRIDGE_FAILURE_STATUS, SessionCore, type SessionCoreContext } from '../session/core.ts';
import { REQUEST_LIMITS, type RunRequest } from '../session/requests.ts';
import type { SessionSink } from '../session/sink.ts';
import { ChannelOutput } from './channel-output.ts';
import { REFUSED } from '../forwarding/refusals.ts';

export class Session {
  private readonly core: SessionCore;
  /** Resolves once the session is over and its process is gone. */
  readonly closed: Promise<void>;
  private resolveDelivered!: () => void;
  /** Resolves once the client closed the channel, i.e. it has everything we sent (OpenSSH
   *  closes only after writing out what it holds), or is gone. Cutting the connection before
   *  that (a shutdown) makes the client drop output it still holds. */
  readonly delivered = new Promise<void>((r) => (this.resolveDelivered = r));

  /** Requests that mean nothing once the shell, command or subsystem runs (ssh2 refuses them
   *  then anyway). Their listeners go at start: an idle session held ~400 bytes of them. */
  private static readonly SETUP_REQUESTS = ['pty', 'env', 'shell', 'exec', 'subsystem', 'auth-agent', 'x11'] as const;

  constructor(
    private readonly ssh: SshSession,
    ctx: SessionCoreContext,
  ) {
    const core = new SessionCore(ctx);
    this.core = core;
    this.closed = core.closed;
    const log = ctx.events.log;
    ssh.on('pty', (accept, reject, info: PseudoTtyInfo) => {
      if (!core.requestTty({ term: info.term, cols: info.cols, rows: info.rows })) return reject?.();
      accept?.();
    });
    ssh.on('env', (accept, reject, info) => (core.setEnv(info.key, info.val) ? accept?.() : reject?.()));
    ssh.on('window-change', (accept, _reject, info: WindowChangeInfo) => {
      accept?.();
      core.resize({ cols: info.cols, rows: info.rows });
    });
    ssh.on('signal', (accept, _reject, info) => {
      accept?.();
      core.signal(info.name);
    });
    ssh.on('shell', (accept, reject) => this.start(accept, reject, { kind: 'shell' }));
    ssh.on('exec', (accept, reject, info) => this.start(accept, reject, { kind: 'exec', command: info.command }));
    ssh.on('subsystem', (accept, reject, info) => {
      if (info.name !== 'sftp') {
        log.info({ subsystem: String(info.name).slice(0, REQUEST_LIMITS.subsystemBytes) }, 'unknown subsystem refused');
        return reject?.();
      }
      this.start(accept, reject, { kind: 'subsystem', name: 'sftp' });
    });
    ssh.on('auth-agent', (_accept, reject) => {
      log.info(REFUSED.agent);
      reject?.();
    });
    ssh.on('x11', (_accept, reject) => {
      log.info(REFUSED.x11);
      reject?.();
    });
    ssh.on('close', () => this.onClientGone('session channel closed'));
  }

  /** The client went away (channel closed, network drop, client killed). */
  onClientGone(reason: string): void {
    this.resolveDelivered();
    this.core.clientGone(reason);
  }

  /** A notice on the user's terminal (TTY sessions) and in the log; see SessionCore.notify. */
  notify(message: string): void {
    this.core.notify(message);
  }

  /** Ends the session from the bridge's side: the process is terminated, the user told why. */
  end(reason: string): Promise<void> {
    return this.core.end(reason);
  }

  private start(accept: () => ServerChannel | undefined, reject: (() => void) | undefined, request: RunRequest): void {
    if (!this.core.startable) return reject?.();
    const channel = accept();
    if (!channel) return;
    const tty = request.kind === 'subsystem' ? false : this.core.tty !== null;
    channel.on('error', (err: Error) => this.core.log.debug({ err: err.message }, 'channel error'));
    channel.stderr.on('error', () => {});
    this.core.start(channelSink(channel, new ChannelOutput(channel, tty)), channel, request);
    for (const name of Session.SETUP_REQUESTS) this.ssh.removeAllListeners(name);
  }
}

/** The SSH channel as the core's sink: bridge lines on stderr, then exit-status, EOF, close. */
function channelSink(channel: ServerChannel, output: ChannelOutput): SessionSink {
  return {
    stdout: output.stdout,
    stderr: output.stderr,
    line: (message) => output.line(`podbridge: ${message}`),
    flushed: (signal) => output.flushed(signal),
    // After end() ssh2 silently drops the status: exit first.
    exit: (exit: Exit) => {
      if (exit.kind === 'code') channel.exit(exit.code);
      else if (exit.kind === 'signal') sendExitSignal(channel, exit.signal, exit.coreDumped);
      else channel.exit(BRIDGE_FAILURE_STATUS);
      channel.end();
    },
  };
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

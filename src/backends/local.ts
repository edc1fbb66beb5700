/**
 * The local backend: processes on the bridge's own machine. It is the embedded default when no
 * cluster is configured (a newcomer gets a shell at once) and the reference the conformance suite
 * uses to prove the session layer. Same semantics as the Kubernetes backend: commands through
 * `/bin/sh -c`, an interactive login shell otherwise, a pty only when one was asked for.
 */
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import pty from 'node-pty';
import type { IPty } from 'node-pty';
import type { Backend, Exit, OpenContext, ProcessSpec, RemoteProcess, TerminalSize } from './backend.ts';
import { execSimpleCommand } from './simple-command.ts';
import { BridgeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Target } from '../target.ts';
import { formatTarget } from '../target.ts';
import { forwardLocal } from './local-forward.ts';

const DEFAULT_SIZE: TerminalSize = { cols: 80, rows: 24 };

export interface LocalBackendOptions {
  /** Login shell for interactive sessions; default $SHELL, else bash, else sh. */
  shell?: string;
  /** How long a terminated session's processes get between SIGHUP and SIGKILL; default 2 s. */
  terminateGraceMs?: number;
}

/** The user's login shell, as sshd takes it from the password database. */
function pickShell(preferred?: string): string {
  let passwdShell: string | undefined;
  try {
    passwdShell = os.userInfo().shell ?? undefined;
  } catch {
    passwdShell = undefined;
  }
  for (const candidate of [preferred, passwdShell, process.env.SHELL, '/bin/bash', '/bin/sh']) {
    if (candidate && fs.existsSync(candidate)) return candidate;
  }
  return '/bin/sh';
}

/** A fresh environment as sshd builds one: nothing of the bridge's own (tokens, KUBECONFIG) leaks. */
function sessionEnv(spec: ProcessSpec, shell: string): Record<string, string> {
  const user = os.userInfo();
  const env: Record<string, string> = {
    // The bridge user's own idea of home ($HOME, as their shell's `~`), else the password database's.
    HOME: process.env.HOME && path.isAbsolute(process.env.HOME) ? process.env.HOME : user.homedir,
    USER: user.username,
    LOGNAME: user.username,
    SHELL: shell,
    // sshd's default PATH, never the bridge's own (under `npm start` that holds node_modules/.bin
    // and node-gyp-bin); a login shell then sets its own from /etc/profile.
    PATH: user.uid === 0 ? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' : '/usr/local/bin:/usr/bin:/bin:/usr/games',
  };
  if (spec.tty) env.TERM = spec.tty.term;
  return { ...env, ...spec.env };
}

function signalName(signo: number): string {
  const entry = Object.entries(os.constants.signals).find(([, n]) => n === signo);
  return entry ? entry[0].replace(/^SIG/, '') : `SIG${signo}`;
}

function validSignal(name: string): NodeJS.Signals | null {
  const full = `SIG${name}`;
  return full in os.constants.signals ? (full as NodeJS.Signals) : null;
}

/** Signals a process group; ESRCH (already gone) is the expected end state, not an error. */
function killGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

function groupAlive(pid: number): boolean {
  return killGroup(pid, 0 as unknown as NodeJS.Signals);
}

async function terminateGroup(pid: number, graceMs: number): Promise<void> {
  if (!killGroup(pid, 'SIGHUP')) return;
  killGroup(pid, 'SIGCONT'); // a stopped job must wake up to die of its HUP
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && groupAlive(pid)) await new Promise((r) => setTimeout(r, 50));
  if (groupAlive(pid)) killGroup(pid, 'SIGKILL');
}

/** A process behind a pseudo-terminal (node-pty), with flow control in both directions. */
class PtyProcess implements RemoteProcess {
  readonly stdout: Readable;
  readonly stderr = null;
  readonly stdin: Writable;
  readonly canCloseStdin = true;
  readonly exited: Promise<Exit>;
  private ended = false;

  constructor(
    private readonly term: IPty,
    private readonly graceMs: number,
  ) {
    this.stdout = new Readable({ read: () => term.resume() });
    term.onData((data: string | Buffer) => {
      // node-pty pauses its socket on request: a slow SSH reader stops the process at its write().
      if (!this.stdout.push(typeof data === 'string' ? Buffer.from(data) : data)) term.pause();
    });
    this.stdin = ptyInput(term);
    this.exited = new Promise((resolve) => {
      term.onExit(({ exitCode, signal }) => {
        this.ended = true;
        // node-pty emits exit after its socket closed, and (patches/node-pty+1.1.0+001) only after
        // it handed over everything the program wrote, a paused reader's share included.
        this.stdout.push(null);
        resolve(signal ? { kind: 'signal', signal: signalName(signal), coreDumped: false } : { kind: 'code', code: exitCode });
      });
    });
  }

  resize(size: TerminalSize): void {
    if (this.ended || size.cols <= 0 || size.rows <= 0) return;
    try {
      this.term.resize(size.cols, size.rows);
    } catch {
      // The process exited between our check and the ioctl (EBADF): nothing to resize.
    }
  }

  signal(name: string): void {
    const sig = validSignal(name);
    if (sig && !this.ended) killGroup(this.term.pid, sig);
  }

  async terminate(): Promise<void> {
    if (!this.ended) await terminateGroup(this.term.pid, this.graceMs);
    await this.exited;
  }
}

/** Longest pause between write attempts to a pty whose program does not read its input. */
const PTY_RETRY_MAX_MS = 100;

/**
 * The terminal's input, written to the pty master ourselves. node-pty's own writer queues without
 * limit and, when the kernel's pty buffer is full (a program that does not read its input),
 * retries EAGAIN with setImmediate: a busy loop that held a core at 100% for as long as the
 * program stayed stalled. Here a chunk is acknowledged only once the kernel took all of it (so
 * the SSH channel is paused behind it: bounded memory), and a full buffer is retried on a timer
 * that backs off from 1 ms to PTY_RETRY_MAX_MS: a paste into a reading program stays fast, a
 * stalled one costs next to nothing.
 */
function ptyInput(term: IPty): Writable {
  const { fd, _socket: socket } = term as unknown as { fd?: number; _socket?: { destroyed?: boolean } };
  // Once node-pty closed the master its number may belong to another file: never write then.
  const open = () => socket?.destroyed !== true;
  if (typeof fd !== 'number') {
    // Not node-pty's UnixTerminal (Windows): its own writer is all there is.
    return new Writable({ write: (chunk: Buffer, _enc, cb) => (term.write(chunk as unknown as string), cb()) });
  }
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      let offset = 0;
      let delay = 0;
      const attempt = () => {
        if (!open()) return cb();
        fs.write(fd, chunk, offset, chunk.length - offset, null, (err, written) => {
          if (err && err.code === 'EAGAIN') {
            delay = Math.min(PTY_RETRY_MAX_MS, Math.max(1, delay * 2));
            setTimeout(attempt, delay);
            return;
          }
          // EIO/EBADF: the program exited and the pty is gone; its exit ends the session.
          if (err) return cb();
          offset += written;
          delay = 0;
          if (offset < chunk.length) attempt();
          else cb();
        });
      };
      attempt();
    },
  });
}

/** A process with plain pipes: stdout and stderr stay separate, stdin EOF is a real EOF. */
class PipeProcess implements RemoteProcess {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  readonly canCloseStdin = true;
  readonly exited: Promise<Exit>;
  private ended = false;

  constructor(
    private readonly child: ChildProcess,
    private readonly graceMs: number,
  ) {
    this.stdout = child.stdout!;
    this.stderr = child.stderr!;
    this.stdin = child.stdin!;
    // The process may exit without reading its input; EPIPE on our side is not the user's error.
    this.stdin.on('error', () => {});
    this.exited = new Promise((resolve) => {
      // 'close' (not 'exit') fires after stdout and stderr ended, as the RemoteProcess contract asks.
      child.once('close', (code, signal) => {
        this.ended = true;
        resolve(signal ? { kind: 'signal', signal: signal.replace(/^SIG/, ''), coreDumped: false } : { kind: 'code', code: code ?? 0 });
      });
      child.once('error', (err) => {
        this.ended = true;
        resolve({ kind: 'error', error: new BridgeError('exec-failed', `cannot start the process: ${err.message}`, { cause: err }) });
      });
    });
  }

  resize(): void {}

  signal(name: string): void {
    const sig = validSignal(name);
    if (sig && !this.ended && this.child.pid) killGroup(this.child.pid, sig);
  }

  async terminate(): Promise<void> {
    if (!this.ended && this.child.pid) await terminateGroup(this.child.pid, this.graceMs);
    this.stdout.destroy();
    this.stderr.destroy();
    await this.exited;
  }
}

export function createLocalBackend(opts: LocalBackendOptions, log: Logger): Backend {
  const shell = pickShell(opts.shell);
  const graceMs = opts.terminateGraceMs ?? 2000;
  return {
    name: 'local',
    defaultNamespace: 'default',
    describe: () => `local shells on this machine as user ${os.userInfo().username} (login shell ${shell}); the login name is not used`,
    async open(target: Target, spec: ProcessSpec, ctx: OpenContext): Promise<RemoteProcess> {
      // The login name is not a place here; the policy still sees what the user asked for.
      const denied = ctx.authorizeResolved?.({ namespace: target.namespace ?? 'default', pod: target.ref.name, container: target.container ?? 'local' });
      if (denied) throw denied;
      const env = sessionEnv(spec, shell);
      // As sshd: a shell request gets the login shell as a login shell (with or without a
      // terminal), a command runs as `$SHELL -c CMD`. A simple command replaces the shell, as
      // with sshd's bash (simple-command.ts); the process group is still the PID we started.
      const file = shell;
      const args = spec.command === null ? ['-l'] : ['-c', execSimpleCommand(spec.command)];
      const cwd = env.HOME && fs.existsSync(env.HOME) ? env.HOME : '/';
      ctx.log.debug({ target: formatTarget(target), file, args, tty: spec.tty !== null }, 'local spawn');
      if (spec.tty) {
        const size = spec.tty.cols > 0 && spec.tty.rows > 0 ? spec.tty : DEFAULT_SIZE;
        const term = pty.spawn(file, args, { name: spec.tty.term, cols: size.cols, rows: size.rows, cwd, env, encoding: null } as pty.IPtyForkOptions);
        return new PtyProcess(term, graceMs);
      }
      // detached: its own process group, so terminate() reaches children and background jobs too.
      const child = spawnChild(file, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      return new PipeProcess(child, graceMs);
    },
    forward: forwardLocal,
    // One place: this machine. The picker offers it under the login name SSH users would type.
    async list() {
      return [{ target: 'local', namespace: 'default', pod: 'local', container: 'local' }];
    },
    async close() {
      log.debug('local backend closed');
    },
  };
}

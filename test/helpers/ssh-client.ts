/**
 * Drives the real OpenSSH client: `ssh host cmd` with captured stdout/stderr/exit code, and
 * interactive `ssh -tt` inside a node-pty terminal whose size we control.
 */
import { spawn } from 'node:child_process';
import pty from 'node-pty';
import type { IPty } from 'node-pty';
import { sshArgs, type ClientKey } from './openssh-args.ts';

export { makeClientKey, sshArgs, type ClientKey } from './openssh-args.ts';

export interface SshResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  port: number;
  key: ClientKey;
  login: string;
  /** Remote command; omitted for a shell. */
  command?: string;
  stdin?: Buffer | NodeJS.ReadableStream | 'ignore';
  extraArgs?: string[];
  timeoutMs?: number;
}

export function runSsh(opts: RunOptions): Promise<SshResult> {
  const args = [...sshArgs(opts.port, opts.key, opts.extraArgs), `${opts.login}@127.0.0.1`];
  if (opts.command !== undefined) args.push(opts.command);
  return new Promise((resolve, reject) => {
    const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {});
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ssh ${opts.login} ${opts.command ?? ''} did not finish within ${opts.timeoutMs ?? 60000} ms; stderr: ${Buffer.concat(err).toString()}`));
    }, opts.timeoutMs ?? 60000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
    if (opts.stdin === undefined || opts.stdin === 'ignore') child.stdin.end();
    else if (Buffer.isBuffer(opts.stdin)) child.stdin.end(opts.stdin);
    else opts.stdin.pipe(child.stdin);
  });
}

/** An interactive `ssh -tt` in a real pseudo-terminal, as a person at a terminal runs it. */
export class InteractiveSsh {
  readonly term: IPty;
  private buffer = '';
  readonly exit: Promise<number>;
  /** ssh's exit status once it has exited (node-pty reports the exit after the last output). */
  private exitedWith: number | null = null;

  /** `forceTty: false` runs plain `ssh host` in the terminal: a pty is requested because stdin is
   *  a terminal, and a refused one is not fatal (with -tt OpenSSH gives up on a refusal). */
  constructor(opts: { port: number; key: ClientKey; login: string; cols?: number; rows?: number; command?: string; env?: Record<string, string>; extraArgs?: string[]; forceTty?: boolean }) {
    const args = [...sshArgs(opts.port, opts.key, opts.extraArgs), ...(opts.forceTty === false ? [] : ['-tt']), `${opts.login}@127.0.0.1`];
    if (opts.command) args.push(opts.command);
    this.term = pty.spawn('ssh', args, {
      name: 'xterm-256color',
      cols: opts.cols ?? 100,
      rows: opts.rows ?? 30,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm-256color', ...opts.env },
    });
    this.term.onData((d) => {
      this.buffer += d;
    });
    this.exit = new Promise((resolve) => this.term.onExit(({ exitCode }) => resolve(exitCode)));
    void this.exit.then((code) => (this.exitedWith = code));
  }

  get output(): string {
    return this.buffer;
  }

  write(text: string): void {
    this.term.write(text);
  }

  /** Waits until the output (after `from`) matches; fails with what was seen. */
  async waitFor(pattern: RegExp, timeoutMs = 15000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.buffer.slice(from).match(pattern);
      if (m) return m;
      // Nothing more can come: say so at once, and that the session ended (a lost last output
      // and a program that never printed look alike otherwise).
      if (this.exitedWith !== null) throw new Error(`ssh exited (status ${this.exitedWith}) before ${pattern} appeared; output: ${JSON.stringify(this.buffer.slice(-2000))}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; output so far: ${JSON.stringify(this.buffer.slice(-2000))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async waitExit(timeoutMs = 15000): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`ssh did not exit within ${timeoutMs} ms; output: ${JSON.stringify(this.buffer.slice(-2000))}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    try {
      this.term.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

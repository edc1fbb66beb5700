/**
 * Streams under full backpressure, through the real OpenSSH client, on every conformance path
 * (suite.ts runs this for each harness, so a new path gets it for free): the command's bytes
 * arrive whole and in order, the session always ends with the command's status, and the bridge's
 * own text (idle and duration warnings, the shutdown notice, the stdin-EOF notice) never stalls
 * the session, never lands inside a line, and never reaches a non-TTY command's stderr.
 *
 * "Full backpressure": the test does not read ssh's stdout or stderr until the notices were
 * given, so the pipes fill, ssh stops granting window, and the bridge's channel, the pump and the
 * process all wait; then it reads slowly (a pause after every chunk).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { sshArgs } from '../helpers/ssh-client.ts';
import type { BridgeOptions, ConformanceHarness, ConformanceTarget } from './suite.ts';
import { waitUntil } from '../helpers/wait.ts';

// Warnings come 1 s (idle) and 4 s (duration) into a session; neither limit ends it in time to matter.
const LIMITS: BridgeOptions = { idleTimeout: 60, maxSessionTime: 63, sessionWarning: 59 };
const IDLE_NOTICE = /^idle session; it ends in \d+ s unless there is activity$/;
const DURATION_NOTICE = /^this session reaches its maximum duration \(63 s\) in 59 s$/;
const SHUTDOWN_NOTICE = /^podbridge is shutting down; this session ends in 60 s$/;

export function seqText(from: number, to: number, eol = '\n'): Buffer {
  const parts: string[] = [];
  for (let i = from; i <= to; i++) parts.push(`${i}${eol}`);
  return Buffer.from(parts.join(''));
}

export const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

interface SlowRun {
  code: number | null;
  stdout: Buffer;
  stderr: Buffer;
}

/**
 * `ssh [-tt] LOGIN COMMAND` (stdin at EOF at once unless `typeAfter`), reading nothing until `hold` resolves, then reading both
 * streams with a pause after each chunk. Fails (rather than hangs) when the session never ends.
 */
export function sshSlowReader(
  t: ConformanceTarget,
  command: string,
  opts: { tty: boolean; hold: () => Promise<void>; /** typed once this much stdout arrived */ typeAfter?: { bytes: number; text: string } },
): Promise<SlowRun> {
  const args = [...sshArgs(t.port, t.key, opts.tty ? ['-tt'] : []), `${t.login}@127.0.0.1`, command];
  const child = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  if (!opts.typeAfter) child.stdin.end(); // EOF at once, as with </dev/null
  let received = 0;
  let typed = false;
  child.stdout.on('data', (b: Buffer) => {
    received += b.length;
    if (opts.typeAfter && !typed && received >= opts.typeAfter.bytes) {
      typed = true;
      child.stdin.write(opts.typeAfter.text);
    }
  });
  child.stdout.pause();
  child.stderr.pause();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const slowly = (stream: NodeJS.ReadableStream, into: Buffer[]) => {
    stream.on('data', (b: Buffer) => {
      into.push(b);
      stream.pause();
      setTimeout(() => stream.resume(), 1);
    });
    stream.resume();
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const got = out.reduce((n, b) => n + b.length, 0);
      reject(new Error(`the session never ended (stalled) after ${got} bytes of stdout; stderr: ${JSON.stringify(Buffer.concat(err).toString().slice(-500))}`));
    }, 120_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
    });
    opts.hold().then(
      () => {
        slowly(child.stdout, out);
        slowly(child.stderr, err);
      },
      (e: unknown) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

const notices = (t: ConformanceTarget): string[] => t.logs.filter((l) => l.msg === 'notice').map((l) => String(l.notice));
const seen = (t: ConformanceTarget, re: RegExp) => notices(t).some((n) => re.test(n));

export function streamsConformance(h: ConformanceHarness): void {
  describe(`streams under backpressure: ${h.name}`, () => {
    it("the command's stderr after its stdout waited for the window: every byte of both, in order, and the exit status", async () => {
      const t = await h.start();
      try {
        // stdout fills the window first; then stderr has to wait for window in its turn.
        const r = await sshSlowReader(t, 'seq 1 1500000; seq 1 1500000 >&2; exit 3', { tty: false, hold: () => new Promise((res) => setTimeout(res, 1000)) });
        const expected = seqText(1, 1500000);
        assert.equal(r.stdout.length, expected.length, 'stdout length');
        assert.equal(sha256(r.stdout), sha256(expected), 'stdout bytes');
        assert.equal(r.stderr.length, expected.length, 'stderr length');
        assert.equal(sha256(r.stderr), sha256(expected), 'stderr bytes');
        assert.equal(r.code, 3);
      } finally {
        await t.close();
      }
    });

    it('no TTY: every notice while stdout and stderr are both full goes to the log; the command\'s bytes and status arrive untouched', async () => {
      const t = await h.start(LIMITS);
      try {
        const hold = async () => {
          await waitUntil('the idle and duration warnings', () => seen(t, IDLE_NOTICE) && seen(t, DURATION_NOTICE), 30_000);
          if (!h.stdinEof) await waitUntil('the stdin-EOF notice', () => t.logs.some((l) => /^stdin EOF cannot be delivered over .*v4\.channel\.k8s\.io/.test(String(l.msg))), 30_000);
          void t.shutdown(60_000);
          await waitUntil('the shutdown notice', () => seen(t, SHUTDOWN_NOTICE), 30_000);
        };
        const r = await sshSlowReader(t, 'seq 1 2000000 >&2 & seq 1 2000000; wait', { tty: false, hold });
        const expected = seqText(1, 2000000);
        assert.equal(r.stdout.length, expected.length, 'stdout length');
        assert.equal(sha256(r.stdout), sha256(expected), 'stdout bytes');
        assert.equal(r.stderr.length, expected.length, `stderr holds the command's bytes only: ${JSON.stringify(r.stderr.subarray(-200).toString())}`);
        assert.equal(sha256(r.stderr), sha256(expected), 'stderr bytes');
        assert.equal(r.code, 0);
        for (const l of t.logs.filter((x) => x.msg === 'notice')) assert.equal(l.shown, false);
      } finally {
        await t.close();
      }
    });

    it('TTY: every notice reaches the terminal as whole lines at a line boundary while the terminal stream is full; every byte and the status arrive', async () => {
      const t = await h.start(LIMITS);
      try {
        const hold = async () => {
          await waitUntil('the idle and duration warnings', () => seen(t, IDLE_NOTICE) && seen(t, DURATION_NOTICE), 30_000);
          void t.shutdown(60_000);
          await waitUntil('the shutdown notice', () => seen(t, SHUTDOWN_NOTICE), 30_000);
        };
        const expected = seqText(1, 2500000, '\r\n'); // the terminal's onlcr
        // The command waits for a line typed once all its output arrived: this test is about the
        // notices; output written just before an exit is local-exit-output.test.ts's (node-pty,
        // the local backend's and the fake API server's terminal, needed a patch for it).
        const r = await sshSlowReader(t, 'stty -echo; seq 1 2500000; read x; exit 5', { tty: true, hold, typeAfter: { bytes: expected.length, text: '\n' } });
        assert.equal(r.stdout.length, expected.length, 'stdout length');
        assert.equal(sha256(r.stdout), sha256(expected), 'stdout bytes');
        assert.equal(r.code, 5);
        // Sent at a line boundary of the terminal's stream, each notice is a whole line of its
        // own: no leading CRLF was needed to get off a half-written line.
        const lines = r.stderr.toString().split('\r\n');
        assert.equal(lines.pop(), '', `stderr ends with a line end: ${JSON.stringify(r.stderr.toString())}`);
        for (const line of lines) assert.match(line, /^podbridge: \S/, `a whole bridge line: ${JSON.stringify(r.stderr.toString())}`);
        const text = lines.map((l) => l.replace(/^podbridge: /, ''));
        for (const re of [IDLE_NOTICE, DURATION_NOTICE, SHUTDOWN_NOTICE]) assert.ok(text.some((l) => re.test(l)), `${re} on the terminal: ${JSON.stringify(text)}`);
      } finally {
        await t.close();
      }
    });
  });
}

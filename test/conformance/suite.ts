/**
 * One behaviour suite, run against every backend through the real OpenSSH client: a backend
 * proves itself by passing it. Each test asserts what a user would notice: bytes, checksums,
 * exit codes, terminal sizes, error text.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { InteractiveSsh, makeClientKey, runSsh, type ClientKey } from '../helpers/ssh-client.ts';
import { streamsConformance } from './streams.ts';

export interface ConformanceTarget {
  port: number;
  key: ClientKey;
  /** A login name that reaches a healthy container. */
  login: string;
  /** The bridge's log lines, parsed. */
  logs: Array<Record<string, unknown>>;
  /** As on SIGTERM: sessions are told and may finish within `graceMs`. */
  shutdown(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Bridge settings a test may need (the session limits, in seconds). */
export interface BridgeOptions {
  idleTimeout?: number;
  maxSessionTime?: number;
  sessionWarning?: number;
  acceptEnv?: string[];
  /** With `key`: an authorized_keys file of the test's own (e.g. with a forced command). */
  authorizedKeys?: string;
  key?: ClientKey;
}

export interface ErrorCase {
  what: string;
  login: string;
  /** The one line the user must see on stderr. */
  message: RegExp;
  /** The command to try; default `echo should-not-run`. */
  command?: string;
}

export interface ConformanceHarness {
  name: string;
  /** A fresh bridge (and whatever it needs) for this path. */
  start(options?: BridgeOptions): Promise<ConformanceTarget>;
  errorCases: ErrorCase[];
  /** False where the backend cannot deliver stdin EOF (Kubernetes exec v4). */
  stdinEof: boolean;
  /** What `ssh -t host 'sleep 100'` + Ctrl-C exits with: 130 where the process's death by SIGINT
   *  arrives as an exit code (Kubernetes, as kubectl), 255 where it is an exit-signal (local, as
   *  sshd: OpenSSH's client exits 255 on exit-signal). Default 130. */
  interruptStatus?: number;
  /** The shell a command runs through (its `$0`): /bin/sh in containers, as `kubectl exec -- sh -c`
   *  would; the user's login shell on the local backend, as sshd runs `$SHELL -c`. Default /bin/sh. */
  commandShell?: string;
}

/** Runs a client tool to completion; rejects with its stderr so a failure says why. */
function execFileP(file: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} failed (${err.message}): ${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.end(input ?? '');
  });
}

const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

/** The sha256 of `seq 1 N`: every line differs, so a dropped or reordered chunk changes it.
 *  Hashed in slices: the whole text at once (14.5 M strings, then 114 MB) cost seconds of CPU and
 *  garbage collection in the process that also runs the bridge. */
function seqSha256(n: number): string {
  const hash = crypto.createHash('sha256');
  for (let from = 1; from <= n; from += 100_000) {
    const parts: string[] = [];
    for (let i = from; i <= Math.min(n, from + 99_999); i++) parts.push(`${i}\n`);
    hash.update(parts.join(''));
  }
  return hash.digest('hex');
}

export function conformance(h: ConformanceHarness): void {
  describe(`conformance: ${h.name}`, () => {
    let t: ConformanceTarget;
    const run = (command: string | undefined, extra: Partial<Parameters<typeof runSsh>[0]> = {}) =>
      runSsh({ port: t.port, key: t.key, login: t.login, command, ...extra });

    before(async () => {
      t = await h.start();
    });
    after(async () => {
      await t?.close();
    });

    it('runs a command and returns its stdout with exit status 0', async () => {
      const r = await run('echo hello; printf "%s|" "$0"');
      assert.equal(r.stderr, '');
      assert.equal(r.stdout.toString(), `hello\n${h.commandShell ?? '/bin/sh'}|`);
      assert.equal(r.code, 0);
    });

    it('returns the remote exit code exactly', async () => {
      for (const code of [1, 3, 126, 127, 130, 255]) {
        const r = await run(`exit ${code}`);
        assert.equal(r.code, code, `exit ${code}: stderr ${r.stderr}`);
      }
      const missing = await run('definitely-not-a-command-xyz');
      assert.equal(missing.code, 127);
      assert.match(missing.stderr, /definitely-not-a-command-xyz/);
    });

    it('keeps stderr separate from stdout', async () => {
      const r = await run('echo out; echo err >&2; echo out2; exit 4');
      assert.equal(r.stdout.toString(), 'out\nout2\n');
      assert.equal(r.stderr, 'err\n');
      assert.equal(r.code, 4);
    });

    it('runs the command through /bin/sh -c, never split on spaces', async () => {
      const r = await run(`printf '[%s]' "a  b" 'c d' ; X='$HOME'; echo " $X" | tr a-z A-Z`);
      assert.equal(r.stdout.toString(), '[a  b][c d] $HOME\n');
      assert.equal(r.code, 0);
    });

    it('carries accepted environment (SetEnv/SendEnv) but not others', async () => {
      const r = await run('printf "%s|%s" "$LC_PODBRIDGE_TEST" "${EVIL_VAR-unset}"', {
        extraArgs: ['-o', 'SetEnv=LC_PODBRIDGE_TEST=hello\\ world EVIL_VAR=1'],
      });
      assert.equal(r.stdout.toString(), 'hello world|unset');
    });

    if (h.stdinEof) {
      it('delivers stdin EOF: a 10 MiB upload is read whole and checked by sha256', async () => {
        const data = crypto.randomBytes(10 * 1024 * 1024);
        const r = await run('sha256sum | cut -d" " -f1; wc -c </dev/null >/dev/null', { stdin: data });
        assert.equal(r.stdout.toString().trim(), sha256(data));
        assert.equal(r.code, 0);
      });

      it('delivers stdin EOF to `wc -c` and `tar x` like OpenSSH does', async () => {
        const r = await run('wc -c', { stdin: Buffer.from('12345') });
        assert.equal(r.stdout.toString().trim(), '5');
        const dir = `/tmp/pb-tar-${crypto.randomUUID()}`;
        const tarball = await run(`mkdir -p ${dir}/src && printf payload > ${dir}/src/f && tar c -C ${dir} src`);
        assert.equal(tarball.code, 0);
        const untar = await run(`mkdir -p ${dir}/dst && tar x -C ${dir}/dst && cat ${dir}/dst/src/f; rm -rf ${dir}`, { stdin: tarball.stdout });
        assert.equal(untar.stdout.toString(), 'payload');
        assert.equal(untar.code, 0);
      });
    } else {
      it('without stdin EOF (v4) all output and the exit status still arrive', async () => {
        const data = crypto.randomBytes(1024 * 1024);
        const r = await run('head -c 1048576 | sha256sum | cut -d" " -f1; echo err >&2; exit 3', { stdin: data });
        assert.equal(r.stdout.toString().trim(), sha256(data));
        assert.equal(r.stderr, 'err\n');
        assert.equal(r.code, 3);
      });
    }

    it('streams 100 MiB down with every byte in order (sha256)', async () => {
      const n = 14_500_000; // `seq 1 N` is ~114 MB
      const r = await run(`seq 1 ${n}`, { timeoutMs: 300_000 }); // generous: CI machines are shared
      assert.equal(r.code, 0);
      assert.ok(r.stdout.length > 100 * 1024 * 1024);
      assert.equal(sha256(r.stdout), seqSha256(n));
    });

    // Legacy `scp -O` ends its sink on stdin EOF, so it needs a backend that can deliver EOF.
    it(`transfers files with scp (SFTP protocol${h.stdinEof ? ' and legacy -O' : ''}) and sftp, byte for byte`, async () => {
      const local = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-xfer-'));
      const remote = `/tmp/pb-xfer-${crypto.randomUUID()}`;
      const data = crypto.randomBytes(3 * 1024 * 1024 + 17);
      fs.writeFileSync(path.join(local, 'up.bin'), data);
      const common = ['-F', '/dev/null', '-i', t.key.keyFile, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];
      const dest = (p: string) => `${t.login}@127.0.0.1:${p}`;
      try {
        assert.equal((await run(`mkdir -p ${remote}`)).code, 0);
        await execFileP('scp', [...common, '-P', String(t.port), path.join(local, 'up.bin'), dest(`${remote}/sftp.bin`)]);
        if (h.stdinEof) await execFileP('scp', [...common, '-O', '-P', String(t.port), path.join(local, 'up.bin'), dest(`${remote}/legacy.bin`)]);
        else await execFileP('scp', [...common, '-P', String(t.port), path.join(local, 'up.bin'), dest(`${remote}/legacy.bin`)]);
        const sums = await run(`cd ${remote} && sha256sum sftp.bin legacy.bin`);
        assert.equal(sums.stdout.toString(), `${sha256(data)}  sftp.bin\n${sha256(data)}  legacy.bin\n`);
        await execFileP('scp', [...common, '-P', String(t.port), dest(`${remote}/sftp.bin`), path.join(local, 'down.bin')]);
        assert.equal(sha256(fs.readFileSync(path.join(local, 'down.bin'))), sha256(data));
        const batch = `put ${path.join(local, 'up.bin')} ${remote}/batch.bin\nls -l ${remote}/batch.bin\nget ${remote}/batch.bin ${path.join(local, 'batch.bin')}\n`;
        const out = await execFileP('sftp', [...common, '-P', String(t.port), '-b', '-', `${t.login}@127.0.0.1`], batch);
        assert.match(out, new RegExp(`${data.length}`));
        assert.equal(sha256(fs.readFileSync(path.join(local, 'batch.bin'))), sha256(data));
      } finally {
        await run(`rm -rf ${remote}`);
        fs.rmSync(local, { recursive: true, force: true });
      }
    });

    it('gives an interactive login shell with TERM and the initial window size', async () => {
      const s = new InteractiveSsh({ port: t.port, key: t.key, login: t.login, cols: 123, rows: 37 });
      try {
        s.write('echo "T=$TERM S=$(stty size) I=$-"; exit 7\r');
        const m = await s.waitFor(/T=(\S+) S=(\d+ \d+) I=(\S*)/);
        assert.equal(m[1], 'xterm-256color');
        assert.equal(m[2], '37 123');
        assert.match(m[3] ?? '', /i/, 'the shell is interactive');
        assert.equal(await s.waitExit(), 7);
      } finally {
        s.kill();
      }
    });

    it('sees the initial size before the first byte of output (ssh -t cmd)', async () => {
      const s = new InteractiveSsh({ port: t.port, key: t.key, login: t.login, cols: 91, rows: 19, command: 'stty size' });
      try {
        await s.waitFor(/19 91/);
        assert.equal(await s.waitExit(), 0);
      } finally {
        s.kill();
      }
    });

    it('applies window-change: stty size follows every resize, the last one wins', async () => {
      const s = new InteractiveSsh({ port: t.port, key: t.key, login: t.login, cols: 80, rows: 24 });
      try {
        // Only the remote shell computes $((1+1)); typed text can be echoed locally before ssh goes raw.
        s.write('echo READY-$((1+1))\r');
        await s.waitFor(/READY-2/);
        for (const [c, r] of [[100, 40], [120, 50], [132, 43]] as const) s.term.resize(c, r);
        await new Promise((r) => setTimeout(r, 300));
        const from = s.output.length;
        s.write('echo "SIZE=$(stty size)"\r');
        const m = await s.waitFor(/SIZE=(\d+ \d+)/, 15000, from);
        assert.equal(m[1], '43 132');
        s.write('exit\r');
        assert.equal(await s.waitExit(), 0);
      } finally {
        s.kill();
      }
    });

    it('Ctrl-C in a terminal interrupts the foreground command, not the session', async () => {
      const s = new InteractiveSsh({ port: t.port, key: t.key, login: t.login });
      try {
        // Interrupt only once the command really runs (a fixed delay races a slow shell start).
        s.write('echo SLEEPING-$((1+1)); sleep 30\r');
        await s.waitFor(/SLEEPING-2/);
        await new Promise((r) => setTimeout(r, 200));
        s.write('\x03');
        // A shell abandons a whole command list on SIGINT, so ask for the status separately.
        s.write('echo AFTER=$?\r');
        await s.waitFor(/AFTER=130/);
        s.write('exit 0\r');
        assert.equal(await s.waitExit(), 0);
      } finally {
        s.kill();
      }
    });

    it('Ctrl-C to a command that handles SIGINT, then a normal exit: status 0, as sshd and kubectl (no shell stays above a simple command)', async () => {
      // Plain words and quotes: a simple command, exec'd as bash -c would.
      const program = `sh -c 'trap "echo GOT-INT; exit 0" INT; echo READY; while :; do sleep 1; done'`;
      const s = new InteractiveSsh({ port: t.port, key: t.key, login: t.login, command: program });
      try {
        await s.waitFor(/READY/);
        await new Promise((r) => setTimeout(r, 200));
        s.write('\x03');
        await s.waitFor(/GOT-INT/);
        assert.equal(await s.waitExit(), 0);
      } finally {
        s.kill();
      }
    });

    it(`Ctrl-C to \`sleep 100\` in a terminal ends it: status ${h.interruptStatus ?? 130}`, async () => {
      const s = new InteractiveSsh({ port: t.port, key: t.key, login: t.login, command: 'sh -c \'echo READY; exec sleep 100\'' });
      try {
        await s.waitFor(/READY/);
        await new Promise((r) => setTimeout(r, 300));
        s.write('\x03');
        assert.equal(await s.waitExit(), h.interruptStatus ?? 130);
      } finally {
        s.kill();
      }
    });

    for (const c of [{ what: 'invalid login name', login: 'Not_Valid!', message: /invalid login name "Not_Valid!"/ }, ...h.errorCases]) {
      it(`error: ${c.what} -> one clear line on stderr, non-zero exit`, async () => {
        const r = await runSsh({ port: t.port, key: t.key, login: c.login, command: c.command ?? 'echo should-not-run' });
        assert.equal(r.stdout.toString(), '');
        assert.match(r.stderr, c.message);
        assert.match(r.stderr, /^podbridge: [^\n]+\n$/, `exactly one line: ${JSON.stringify(r.stderr)}`);
        assert.equal(r.code, 255);
      });
    }

    it('keeps serving after errors: a normal command still works', async () => {
      const r = await run('echo still-here');
      assert.equal(r.stdout.toString(), 'still-here\n');
    });
  });
  forcedCommandConformance(h);
  streamsConformance(h);
}

/** A forced command stays forced whatever environment the client may set (issue 15). */
function forcedCommandConformance(h: ConformanceHarness): void {
  describe(`forced command and client environment: ${h.name}`, () => {
    it('SetEnv of names the exec wrapper once used (n, i) cannot make anything but the forced command run', async () => {
      const key = makeClientKey();
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-forced-'));
      const authorizedKeys = path.join(dir, 'authorized_keys');
      fs.writeFileSync(authorizedKeys, `command="echo forced:$LC_PB" ${key.publicLine}\n`);
      const t = await h.start({ key, authorizedKeys, acceptEnv: ['LC_*', '?'] });
      try {
        const r = await runSsh({ port: t.port, key, login: t.login, command: 'echo asked', extraArgs: ['-o', 'SetEnv=n=1 LC_PB=x;echo\\ BYPASSED i=3'] });
        assert.equal(r.stdout.toString(), 'forced:x;echo BYPASSED\n');
        assert.equal(r.code, 0);
      } finally {
        await t.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/**
 * The SSH front door as a security reviewer checks it: ssh-audit findings, host keys from a
 * directory, and every abuse limit exercised with real connections on loopback.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadHostKeys } from '../../src/ssh/keys.ts';
import { startTestBridge } from '../helpers/bridge.ts';
import { InteractiveSsh, makeClientKey, runSsh, sshArgs } from '../helpers/ssh-client.ts';

function run(file: string, args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 60_000 }, (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout }));
  });
}

function hostKeyDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-hostkeys-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'ssh_host_ed25519_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '3072', '-N', '', '-f', path.join(dir, 'ssh_host_rsa_key')]);
  return dir;
}

describe('hardened front door', () => {
  it('ssh-audit reports no failure and no warning (but the Terrapin marker and the post-quantum kex it predates)', async () => {
    const dir = hostKeyDir();
    const b = await startTestBridge({ hostKey: [dir] });
    try {
      const audit = await run('ssh-audit', ['-n', '-p', String(b.port), '127.0.0.1']);
      const algorithmLines = audit.stdout.split('\n').filter((l) => /^\((kex|key|enc|mac|gen)\)/.test(l));
      assert.ok(algorithmLines.some((l) => l.startsWith('(key) rsa-sha2-512')), `RSA host key offered:\n${audit.stdout}`);
      assert.ok(algorithmLines.some((l) => l.startsWith('(key) ssh-ed25519')));
      const findings = audit.stdout
        .split('\n')
        .filter((l) => /\[(fail|warn)\]/.test(l))
        // Debian 12's ssh-audit 2.5 predates these names (and still calls sntrup761's OpenSSH name
        // experimental); ssh-audit 3.3 knows them all and warns about none (openssh10.test.ts).
        .filter((l) => !/^\(kex\) (kex-strict-s-v00@openssh\.com|mlkem768x25519-sha256|sntrup761x25519-sha512)\s+-- \[warn\] unknown algorithm$/.test(l))
        .filter((l) => !/^\(kex\) sntrup761x25519-sha512@openssh\.com\s+-- \[warn\] using experimental algorithm$/.test(l));
      assert.deepEqual(findings, [], audit.stdout);
      assert.ok(audit.stdout.includes('kex-strict-s-v00@openssh.com'), 'strict key exchange stays on');
    } finally {
      await b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('loads host keys from a directory (a Secret mount) and refuses weak or duplicate ones', () => {
    const dir = hostKeyDir();
    try {
      assert.deepEqual(loadHostKeys([dir]).map((k) => k.type).sort(), ['ssh-ed25519', 'ssh-rsa']);
      const weak = path.join(dir, 'weak');
      execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-f', weak]);
      assert.throws(() => loadHostKeys([weak]), /is RSA with 2048 bits; use at least 3072/);
      const ecdsa = path.join(dir, 'ecdsa');
      execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-N', '', '-f', ecdsa]);
      assert.throws(() => loadHostKeys([ecdsa]), /is ecdsa-sha2-nistp256; use ed25519/);
      const other = path.join(dir, 'other-ed25519');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
      assert.throws(() => loadHostKeys([path.join(dir, 'ssh_host_ed25519_key'), other]), /two ssh-ed25519 host keys/);
      fs.writeFileSync(path.join(dir, 'garbage'), 'not a key', { mode: 0o600 });
      assert.throws(() => loadHostKeys([path.join(dir, 'garbage')]), /is not an unencrypted OpenSSH\/PEM private key/);
      const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-empty-'));
      const generated = loadHostKeys([empty]);
      assert.equal(generated[0]?.type, 'ssh-ed25519');
      assert.equal(generated[0]?.generated, true);
      fs.rmSync(empty, { recursive: true });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('drops a connection that does not authenticate within the login grace time', async () => {
    const b = await startTestBridge({ loginGraceTime: 1 });
    try {
      const sock = net.connect(b.port, '127.0.0.1');
      sock.on('error', () => {});
      sock.resume(); // read (and drop) the server's version line so EOF can be seen
      const closed = await new Promise<boolean>((resolve) => {
        sock.on('close', () => resolve(true));
        setTimeout(() => resolve(false), 10_000);
      });
      assert.ok(closed, `the bridge closed the silent connection; log: ${JSON.stringify(b.logs.map((l) => l.msg))}`);
      assert.ok(b.logs.some((l) => l.msg === 'login grace time exceeded; disconnecting'));
    } finally {
      await b.close();
    }
  });

  it('ends a connection after max-auth-tries failures and backs off a source that keeps failing', async () => {
    const b = await startTestBridge({ maxAuthTries: 2 });
    try {
      // An agent-less client with several unknown keys: each offer is one failure.
      const strangers = [makeClientKey('s1'), makeClientKey('s2'), makeClientKey('s3')];
      const r = await runSsh({
        port: b.port,
        key: strangers[0]!,
        login: 'x',
        command: 'true',
        extraArgs: strangers.slice(1).flatMap((k) => ['-i', k.keyFile]),
      });
      assert.equal(r.code, 255);
      assert.ok(b.logs.some((l) => l.msg === 'too many authentication failures; disconnecting'));

      // Keep failing until the per-source back-off (10 failures a minute) bites.
      for (let i = 0; i < 6 && !b.logs.some((l) => l.msg === 'repeated authentication failures: source address backed off'); i++) {
        await runSsh({ port: b.port, key: strangers[0]!, login: 'x', command: 'true', extraArgs: strangers.slice(1).flatMap((k) => ['-i', k.keyFile]) });
      }
      assert.ok(b.logs.some((l) => l.msg === 'repeated authentication failures: source address backed off'));
      // Now even the right key from that address is turned away for a while.
      const blocked = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo in' });
      assert.equal(blocked.code, 255);
      assert.equal(blocked.stdout.length, 0);
      assert.ok(b.logs.some((l) => l.msg === 'connection dropped by limit' && l.limit === 'failure-backoff'));
    } finally {
      await b.close();
    }
  });

  it('a successful login from the address does not wipe its failures (real client)', async () => {
    const b = await startTestBridge({ backoffThreshold: 3 });
    try {
      const stranger = makeClientKey('stranger');
      for (let i = 0; i < 2; i++) assert.equal((await runSsh({ port: b.port, key: stranger, login: 'x', command: 'true' })).code, 255);
      const ok = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo in' });
      assert.equal(ok.stdout.toString(), 'in\n', ok.stderr);
      // The third failure in the window is the threshold, success or not in between.
      await runSsh({ port: b.port, key: stranger, login: 'x', command: 'true' });
      assert.ok(b.logs.some((l) => l.msg === 'repeated authentication failures: source address backed off' && l.source === '127.0.0.1'));
      const blocked = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo in' });
      assert.equal(blocked.code, 255);
      assert.equal(blocked.stdout.length, 0);
    } finally {
      await b.close();
    }
  });

  it('StrictModes: a key added to an authorized_keys file that others can write is not let in', async () => {
    const b = await startTestBridge({});
    try {
      const file = path.join(b.dir, 'authorized_keys');
      const intruder = makeClientKey('intruder');
      fs.chmodSync(file, 0o666);
      fs.appendFileSync(file, `${intruder.publicLine}\n`);
      const r = await runSsh({ port: b.port, key: intruder, login: 'x', command: 'echo in' });
      assert.equal(r.code, 255);
      assert.equal(r.stdout.length, 0);
      assert.ok(b.logs.some((l) => l.level === 50 && /authorized_keys: not trusted: it is writable by others \(mode 0666\)/.test(String(l.err))), JSON.stringify(b.logs.filter((l) => l.level === 50)));
      fs.chmodSync(file, 0o600);
      const fixed = await runSsh({ port: b.port, key: intruder, login: 'x', command: 'echo in' });
      assert.equal(fixed.stdout.toString(), 'in\n', 'once the mode is fixed the file is read again');
    } finally {
      await b.close();
    }
  });

  it('caps concurrent unauthenticated connections (max-startups) and keeps serving', async () => {
    const b = await startTestBridge({ maxStartups: 3, loginGraceTime: 5 });
    const socks: net.Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const s = net.connect(b.port, '127.0.0.1');
        s.on('error', () => {});
        socks.push(s);
        await new Promise((r) => s.once('data', r)); // the server's banner: the connection is counted
      }
      const fourth = net.connect(b.port, '127.0.0.1');
      fourth.on('error', () => {});
      await new Promise((r) => fourth.once('close', r));
      assert.ok(b.logs.some((l) => l.msg === 'connection dropped by limit' && l.limit === 'max-startups'));
      for (const s of socks) s.destroy();
      await new Promise((r) => setTimeout(r, 200));
      const ok = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo in' });
      assert.equal(ok.stdout.toString(), 'in\n');
    } finally {
      for (const s of socks) s.destroy();
      await b.close();
    }
  });

  it('caps sessions per identity across connections', async () => {
    const b = await startTestBridge({ maxSessionsPerIdentity: 1 });
    try {
      const first = new InteractiveSsh({ port: b.port, key: b.key, login: 'x' });
      // Only the remote shell computes $((1+1)); typed text can be echoed locally before ssh goes raw.
      first.write('echo FIRST-$((1+1))\r');
      await first.waitFor(/FIRST-2/);
      const second = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo second' });
      assert.notEqual(second.code, 0);
      assert.equal(second.stdout.length, 0);
      assert.ok(b.logs.some((l) => l.msg === 'session refused: too many sessions for this identity'));
      first.write('exit\r');
      await first.waitExit();
      await new Promise((r) => setTimeout(r, 200));
      const third = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo third' });
      assert.equal(third.stdout.toString(), 'third\n', 'the slot is released when the session ends');
    } finally {
      await b.close();
    }
  });

  it('sends SSH keepalives, so idle sessions survive load balancers', async () => {
    const b = await startTestBridge({ keepaliveInterval: 1 });
    try {
      const r = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'sleep 3; echo awake', extraArgs: ['-o', 'LogLevel=DEBUG1'] });
      assert.equal(r.stdout.toString(), 'awake\n');
      const keepalives = r.stderr.split('\n').filter((l) => /client_input_global_request: rtype keepalive@openssh\.com want_reply 1/.test(l));
      assert.ok(keepalives.length >= 2, `keepalives seen by the client: ${keepalives.length}`);
    } finally {
      await b.close();
    }
  });

  it('shows the banner before authentication and the motd in interactive shells', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-text-'));
    fs.writeFileSync(path.join(dir, 'banner'), 'Authorized use only.\n');
    fs.writeFileSync(path.join(dir, 'motd'), 'Welcome to the bridge.\nBe careful.\n');
    const b = await startTestBridge({ banner: path.join(dir, 'banner'), motd: path.join(dir, 'motd') });
    try {
      const r = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo cmd', extraArgs: ['-o', 'LogLevel=INFO'] });
      assert.match(r.stderr, /Authorized use only\./);
      assert.equal(r.stdout.toString(), 'cmd\n', 'no motd for commands');
      const s = new InteractiveSsh({ port: b.port, key: b.key, login: 'x' });
      await s.waitFor(/Welcome to the bridge\.\r\nBe careful\./);
      s.write('exit\r');
      await s.waitExit();
    } finally {
      await b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes audit events as JSON lines: connection, auth with fingerprint, session with target, command, exit, duration', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-audit-'));
    const file = path.join(dir, 'audit.jsonl');
    const b = await startTestBridge({ auditLog: file });
    try {
      await runSsh({ port: b.port, key: b.key, login: 'team-a.web-1', command: 'exit 3' });
      await runSsh({ port: b.port, key: makeClientKey('stranger'), login: 'team-a.web-1', command: 'true' });
    } finally {
      await b.close();
    }
    const events = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const fp = execFileSync('ssh-keygen', ['-lf', `${b.key.keyFile}.pub`]).toString().split(' ')[1];
    const success = events.find((e) => e.event === 'auth' && e.result === 'success');
    assert.equal(success?.fingerprint, fp);
    assert.equal(success?.identity, 'tester@podbridge-test');
    assert.match(String(success?.remote), /^127\.0\.0\.1:\d+$/);
    const start = events.find((e) => e.event === 'session-start');
    assert.equal(start?.target, 'team-a.web-1');
    assert.equal(start?.command, 'exit 3');
    const end = events.find((e) => e.event === 'session-end');
    assert.equal(end?.exit, 'status 3');
    assert.equal(typeof end?.durationMs, 'number');
    assert.ok(events.some((e) => e.event === 'auth' && e.result === 'failure' && /^key not in .*authorized_keys$/.test(String(e.reason))));
    assert.ok(events.filter((e) => e.event === 'connect').length >= 2);
    assert.ok(events.some((e) => e.event === 'disconnect'));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('creates the audit file 0600 and records what ran and why: the forced command, the sftp subsystem', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-audit-'));
    const file = path.join(dir, 'audit.jsonl');
    const robot = makeClientKey('robot@ci');
    const plain = makeClientKey('plain@laptop');
    const authorizedKeys = path.join(dir, 'authorized_keys');
    fs.writeFileSync(authorizedKeys, `command="echo forced:$SSH_ORIGINAL_COMMAND" ${robot.publicLine}\n${plain.publicLine}\n`);
    const b = await startTestBridge({ auditLog: file, authorizedKeys, key: plain });
    try {
      const forced = await runSsh({ port: b.port, key: robot, login: 'team-a.web-1', command: 'cat /etc/shadow' });
      assert.equal(forced.stdout.toString(), 'forced:cat /etc/shadow\n', forced.stderr);
      const sftp = await new Promise<number | null>((resolve) => {
        const child = execFile('sftp', ['-b', '-', ...sshArgs(b.port, plain).filter((a) => a !== '-p' && a !== String(b.port)), '-P', String(b.port), 'team-a.web-1@127.0.0.1'], () => {});
        child.stdin!.end('pwd\n');
        child.on('close', resolve);
      });
      assert.equal(sftp, 0);
    } finally {
      await b.close();
    }
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the audit file is readable by its owner only');
    const events = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const starts = events.filter((e) => e.event === 'session-start');
    const byRobot = starts.find((e) => e.identity === 'robot@ci');
    assert.equal(byRobot?.command, 'echo forced:$SSH_ORIGINAL_COMMAND');
    assert.equal(byRobot?.forced, 'key');
    assert.equal(byRobot?.requested, 'cat /etc/shadow');
    const bySftp = starts.find((e) => e.identity === 'plain@laptop');
    assert.equal(bySftp?.subsystem, 'sftp');
    assert.equal(bySftp?.command, null, 'the subsystem, not the launcher script');
    assert.equal(bySftp?.forced, false);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

/**
 * The bridge against OpenSSH 10 and ssh-audit 3.3, the peers of 2026, taken from a small Debian 13
 * root (test/setup/debian13-root.sh builds it once and caches it outside the repository) and run
 * under chroot against the bridge on loopback; Debian 12's OpenSSH 9.2 from the host for contrast.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { startTestBridge } from '../helpers/bridge.ts';
import { runSsh, type ClientKey } from '../helpers/ssh-client.ts';
import { REPO } from '../helpers/paths.ts';

const root = process.env.PODBRIDGE_DEBIAN13_ROOT ?? '/var/cache/podbridge/debian13-root';
const setupScript = path.join(REPO, 'test/setup/debian13-root.sh');

function run(file: string, args: string[], timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Asynchronous: the bridge under test runs in this process and must keep serving.
    execFile(file, args, { timeout, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** The client key copied into the root, so the chrooted ssh can read it. */
function keyInRoot(key: ClientKey): string {
  const dir = fs.mkdtempSync(path.join(root, 'tmp', 'pb-key-'));
  fs.copyFileSync(key.keyFile, path.join(dir, 'id'));
  fs.chmodSync(path.join(dir, 'id'), 0o600);
  return `/${path.relative(root, dir)}/id`;
}

function chrootSsh(port: number, keyPath: string, command: string, extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  return run('chroot', [
    root, 'ssh', '-v', ...extra, '-F', '/dev/null', '-p', String(port), '-i', keyPath, '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=20', 'x@127.0.0.1', command,
  ]);
}

function hostKeyDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-hostkeys-'));
  for (const [type, bits] of [['ed25519', []], ['rsa', ['-b', '3072']]] as const) {
    const r = spawn('ssh-keygen', ['-q', '-t', type, ...bits, '-N', '', '-f', path.join(dir, `ssh_host_${type}_key`)]);
    r.stdout.resume();
  }
  return dir;
}

describe('OpenSSH 10 and ssh-audit 3.3 (Debian 13)', () => {
  before(async () => {
    const setup = await run('bash', [setupScript], 900_000);
    assert.equal(setup.code, 0, `Debian 13 root: ${setup.stdout}${setup.stderr}`);
  });

  it('OpenSSH 10 negotiates mlkem768x25519-sha256 and gets no post-quantum warning; OpenSSH 9.2 gets sntrup761x25519, and curve25519 without it', async () => {
    const b = await startTestBridge();
    try {
      const v10 = await chrootSsh(b.port, keyInRoot(b.key), 'echo pq');
      assert.match(v10.stderr, /OpenSSH_10\./);
      assert.match(v10.stderr, /kex: algorithm: mlkem768x25519-sha256\r?\n/);
      assert.doesNotMatch(v10.stderr, /post-quantum/i);
      assert.equal(v10.stdout, 'pq\n');
      assert.equal(v10.code, 0);
      assert.match(v10.stderr, /server-sig-algs=<ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256>/);

      // Debian 12's 9.2 lists sntrup761x25519-sha512 first: it gets a post-quantum exchange too.
      const v9 = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo nine', extraArgs: ['-o', 'LogLevel=DEBUG1'] });
      assert.match(v9.stderr, /OpenSSH_9\.2/);
      assert.match(v9.stderr, /kex: algorithm: sntrup761x25519-sha512\r?\n/);
      assert.equal(v9.stdout.toString(), 'nine\n');

      const classic = await runSsh({
        port: b.port, key: b.key, login: 'x', command: 'echo classic',
        extraArgs: ['-o', 'LogLevel=DEBUG1', '-o', 'KexAlgorithms=curve25519-sha256'],
      });
      assert.match(classic.stderr, /kex: algorithm: curve25519-sha256\r?\n/);
      assert.equal(classic.stdout.toString(), 'classic\n');
    } finally {
      await b.close();
    }
  });

  it('OpenSSH 10.0 and 9.2 negotiate sntrup761x25519-sha512 under both names when asked to, and run a command', async () => {
    const b = await startTestBridge();
    try {
      const keyPath = keyInRoot(b.key);
      for (const kex of ['sntrup761x25519-sha512@openssh.com', 'sntrup761x25519-sha512']) {
        const v10 = await chrootSsh(b.port, keyPath, `echo ten ${kex}`, ['-o', `KexAlgorithms=${kex}`]);
        assert.match(v10.stderr, /OpenSSH_10\./);
        assert.ok(v10.stderr.includes(`kex: algorithm: ${kex}\n`) || v10.stderr.includes(`kex: algorithm: ${kex}\r\n`), v10.stderr);
        assert.equal(v10.stdout, `ten ${kex}\n`);
        assert.equal(v10.code, 0);

        const v9 = await runSsh({
          port: b.port, key: b.key, login: 'x', command: `echo nine ${kex}`,
          extraArgs: ['-o', 'LogLevel=DEBUG1', '-o', `KexAlgorithms=${kex}`],
        });
        assert.match(v9.stderr, /OpenSSH_9\.2/);
        assert.ok(v9.stderr.includes(`kex: algorithm: ${kex}\n`) || v9.stderr.includes(`kex: algorithm: ${kex}\r\n`), v9.stderr);
        assert.equal(v9.stdout.toString(), `nine ${kex}\n`);
        assert.equal(v9.code, 0);
      }
    } finally {
      await b.close();
    }
  });

  it('ssh-audit 3.3 reports no failure, no warning and no DHEat throttling note', async () => {
    const dir = hostKeyDir();
    await new Promise((r) => setTimeout(r, 0));
    // ssh-keygen runs asynchronously above; wait for both keys.
    const deadline = Date.now() + 60_000;
    while (!['ed25519', 'rsa'].every((t) => fs.existsSync(path.join(dir, `ssh_host_${t}_key.pub`))) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const b = await startTestBridge({ hostKey: [dir] });
    try {
      const audit = await run('chroot', [root, 'ssh-audit', '-n', '-p', String(b.port), '127.0.0.1']);
      assert.match(audit.stdout, /^\(kex\) mlkem768x25519-sha256 /m, audit.stdout);
      assert.match(audit.stdout, /^\(kex\) sntrup761x25519-sha512 /m, audit.stdout);
      assert.match(audit.stdout, /^\(kex\) sntrup761x25519-sha512@openssh\.com /m, audit.stdout);
      assert.match(audit.stdout, /^\(kex\) kex-strict-s-v00@openssh\.com /m, 'strict key exchange stays on');
      assert.match(audit.stdout, /^\(key\) rsa-sha2-512 \(3072-bit\)/m);
      const findings = audit.stdout.split('\n').filter((l) => /\[(fail|warn)\]/.test(l));
      assert.deepEqual(findings, [], audit.stdout);
      assert.doesNotMatch(audit.stdout, /insufficient connection throttling/, audit.stdout);
      assert.ok(b.logs.some((l) => l.msg === 'connection dropped by limit' && l.limit === 'connection-rate'), 'the rate test was throttled');
    } finally {
      await b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a connection flood from one address is cut before the banner; logins from it still work', async () => {
    const b = await startTestBridge({ maxConnectionRate: 5, connectionBurst: 10 });
    try {
      // 40 connections at once that never authenticate: each either gets the banner or is closed.
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, () =>
          new Promise<'banner' | 'refused'>((resolve) => {
            const s = net.connect(b.port, '127.0.0.1');
            s.on('error', () => resolve('refused'));
            s.once('data', (d: Buffer) => {
              resolve(d.toString().startsWith('SSH-') ? 'banner' : 'refused');
              s.destroy();
            });
            s.on('close', () => resolve('refused'));
          }),
        ),
      );
      const banners = outcomes.filter((o) => o === 'banner').length;
      assert.ok(banners >= 10 && banners <= 15, `banners: ${banners}`);
      const lines = b.logs.filter((l) => l.msg === 'connection dropped by limit' && l.limit === 'connection-rate');
      assert.equal(lines.length, 1, 'one log line per address per 10 s, not one per refusal');
      assert.match(String(lines[0]?.remote), /^127\.0\.0\.1:\d+$/);

      // The bucket refills at 5/s; then logins that authenticate give their token back, so twelve
      // in a row (more than the burst) all get in: a NAT or a scripted loop is not locked out.
      const first = Date.now();
      let ok = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo in' });
      while (ok.stdout.toString() !== 'in\n' && Date.now() - first < 30_000) {
        await new Promise((r) => setTimeout(r, 250));
        ok = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo in' });
      }
      assert.equal(ok.stdout.toString(), 'in\n');
      for (let i = 0; i < 12; i++) {
        const r = await runSsh({ port: b.port, key: b.key, login: 'x', command: `echo ${i}` });
        assert.equal(r.stdout.toString(), `${i}\n`, `login ${i}: ${r.stderr}`);
      }
    } finally {
      await b.close();
    }
  });
});

/**
 * The SSH front door through the real OpenSSH client and the real CLI: host key lifecycle,
 * authentication refusals, key types, exit-signal, and a bridge that keeps serving.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { compiled, REPO as repo } from '../helpers/paths.ts';
import { makeClientKey, runSsh } from '../helpers/ssh-client.ts';

/** Starts `podbridge serve` as a user would and waits for its "listening" log line. */
async function startCli(args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number; lines: Array<Record<string, unknown>> }> {
  const child = spawn(process.execPath, [compiled('src/cli.ts'), 'serve', ...args], {
    cwd: env.CWD ?? repo,
    env: { ...process.env, KUBECONFIG: '/nonexistent/kubeconfig', HOME: env.HOME ?? process.env.HOME!, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`bridge did not start: ${stderr} ${JSON.stringify(lines)}`)), 20000);
    child.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.msg === 'listening') {
          clearTimeout(timer);
          resolve({ child, port: Number(String(line.address).split(':').pop()), lines });
        }
      }
    });
    child.once('exit', (code) => {
      // A pending 20 s timer would keep the file alive after its last test.
      clearTimeout(timer);
      reject(new Error(`bridge exited ${code}: ${stderr}`));
    });
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

describe('podbridge serve (the real CLI)', () => {
  it('generates an ed25519 host key (0600) on first start, logs its fingerprint, reuses it after a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-cli-'));
    const key = makeClientKey();
    const ak = path.join(dir, 'authorized_keys');
    fs.writeFileSync(ak, `${key.publicLine}\n`);
    const hostKey = path.join(dir, 'keys', 'ssh_host_ed25519_key');
    const args = ['--listen', '127.0.0.1:0', '--host-key', hostKey, '--authorized-keys', ak];
    try {
      const first = await startCli(args);
      assert.equal(fs.statSync(hostKey).mode & 0o777, 0o600);
      const expected = execFileSync('ssh-keygen', ['-lf', hostKey]).toString().split(' ')[1];
      const logged = first.lines.find((l) => l.msg === 'host key generated');
      assert.equal(logged?.fingerprint, expected);
      const backendLine = first.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('backend:'));
      assert.equal(backendLine?.backend, 'local');
      assert.match(String(backendLine?.reason), /no kubeconfig/);
      // The client sees the same fingerprint the log printed.
      const scan = execFileSync('ssh-keyscan', ['-p', String(first.port), '-t', 'ed25519', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const scanned = execFileSync('ssh-keygen', ['-lf', '-'], { input: scan }).toString().split(' ')[1];
      assert.equal(scanned, expected);
      const r = await runSsh({ port: first.port, key, login: 'demo.shell', command: 'echo via-cli' });
      assert.equal(r.stdout.toString(), 'via-cli\n');
      assert.equal(await stop(first.child), 0);

      const second = await startCli(args);
      const loaded = second.lines.find((l) => l.msg === 'host key loaded');
      assert.equal(loaded?.fingerprint, expected);
      assert.equal(await stop(second.child), 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a host key readable by others, naming the file and the fix', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-cli-'));
    const hostKey = path.join(dir, 'hk');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
    fs.chmodSync(hostKey, 0o644);
    await assert.rejects(startCli(['--listen', '127.0.0.1:0', '--host-key', hostKey]), new RegExp(`host key ${hostKey} is readable by other users .*chmod 600`));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('rejects a bad --listen with a message naming it', async () => {
    await assert.rejects(startCli(['--listen', 'nope:99999']), /invalid listen address "nope:99999"/);
  });

  it('serves local shells on loopback only when it fell back to them', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-cli-'));
    const b = await startCli(['--listen', '0.0.0.0:0', '--host-key', path.join(dir, 'hk')]);
    try {
      const listening = b.lines.find((l) => l.msg === 'listening');
      assert.match(String(listening?.address), /^127\.0\.0\.1:/);
      assert.ok(b.lines.some((l) => /loopback only/.test(String(l.msg))));
    } finally {
      await stop(b.child);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('authentication', () => {
  let b: TestBridge;
  const rsa = makeClientKey('rsa-user', 'rsa');
  const ecdsa = makeClientKey('ecdsa-user', 'ecdsa');
  const main = makeClientKey();
  const akDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-ak-'));
  before(async () => {
    // Options before the key type must not stop the line from being read.
    const ak = path.join(akDir, 'authorized_keys');
    fs.writeFileSync(ak, `${main.publicLine}\n# comment line\nfrom="127.0.0.1",no-agent-forwarding ${rsa.publicLine}\n${ecdsa.publicLine}\n`);
    b = await startTestBridge({ key: main, authorizedKeys: ak });
  });
  after(() => b.close());

  it('accepts ed25519, rsa (rsa-sha2 signatures) and ecdsa keys from authorized_keys', async () => {
    for (const key of [b.key, rsa, ecdsa]) {
      const r = await runSsh({ port: b.port, key, login: 'x', command: 'echo in' });
      assert.equal(r.stdout.toString(), 'in\n', `${key.keyFile}: ${r.stderr}`);
    }
  });

  it('refuses a key that is not in authorized_keys with the standard refusal only', async () => {
    const stranger = makeClientKey('stranger');
    const r = await runSsh({ port: b.port, key: stranger, login: 'x', command: 'echo in' });
    assert.equal(r.code, 255);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /Permission denied \(publickey\)/);
    assert.ok(b.logs.some((l) => /^auth refused: key not in .*authorized_keys$/.test(String(l.msg))));
  });

  it('refuses password and keyboard-interactive logins', async () => {
    const r = await runSsh({
      port: b.port,
      key: b.key,
      login: 'x',
      command: 'echo in',
      extraArgs: ['-o', 'PubkeyAuthentication=no', '-o', 'PreferredAuthentications=password,keyboard-interactive'],
    });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /Permission denied \(publickey\)/);
  });

  it('rejects a forged signature: the right public key, signed by another private key', async () => {
    const victim = ssh2.utils.parseKey(b.key.publicLine);
    const attacker = ssh2.utils.parseKey(fs.readFileSync(makeClientKey().keyFile));
    if (victim instanceof Error || attacker instanceof Error || Array.isArray(victim) || Array.isArray(attacker)) throw new Error('key parse');
    // Offers the authorized public key, but every signature comes from the attacker's key.
    const forged = Object.assign(Object.create(Object.getPrototypeOf(attacker) as object) as object, attacker, {
      getPublicSSH: () => victim.getPublicSSH(),
    });
    let attempts = 0;
    const outcome = await new Promise<string>((resolve) => {
      const c = new ssh2.Client();
      c.on('error', (err) => resolve(`error: ${err.message}`));
      c.on('close', () => resolve('closed'));
      c.on('ready', () => resolve('ready'));
      c.connect({
        host: '127.0.0.1',
        port: b.port,
        username: 'x',
        authHandler: (_methods, _partial, next) => {
          if (attempts++ > 0) return next(false as never);
          next({ type: 'publickey', username: 'x', key: forged } as never);
        },
      });
    });
    assert.notEqual(outcome, 'ready');
    assert.ok(b.logs.some((l) => l.msg === 'auth refused: bad signature'), 'the server saw and refused the forged signature');
  });

  it('reports a remote process killed by a signal as exit-signal, like sshd', async () => {
    const result = await new Promise<{ code: unknown; signal: unknown }>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('error', reject);
      c.on('ready', () => {
        c.exec('kill -TERM $$', (err, stream) => {
          if (err) return reject(err);
          stream.on('exit', (code: unknown, signal: unknown) => resolve({ code, signal }));
          stream.resume();
          stream.on('close', () => c.end());
        });
      });
      c.connect({ host: '127.0.0.1', port: b.port, username: 'x', privateKey: fs.readFileSync(b.key.keyFile) });
    });
    assert.equal(result.code, null);
    assert.equal(result.signal, 'SIGTERM'); // ssh2's client prefixes SIG to the wire name TERM
    const ssh = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'kill -KILL $$' });
    assert.equal(ssh.code, 255, 'OpenSSH exits 255 for a remote killed by a signal');
  });

  it('answers a signal request (SIGINT to a running command)', async () => {
    const code = await new Promise<unknown>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('error', reject);
      c.on('ready', () => {
        c.exec("trap 'echo got-int; exit 42' INT; echo armed; while :; do sleep 0.1; done", (err, stream) => {
          if (err) return reject(err);
          let out = '';
          stream.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('armed')) stream.signal('INT');
          });
          stream.on('exit', (code: unknown) => resolve(code));
          stream.on('close', () => c.end());
        });
      });
      c.connect({ host: '127.0.0.1', port: b.port, username: 'x', privateKey: fs.readFileSync(b.key.keyFile) });
    });
    assert.equal(code, 42);
  });
});

describe('first run', () => {
  it('a key added to authorized_keys after start works at once, even where ~/.ssh did not exist', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-home-'));
    const ak = path.join(home, '.ssh', 'authorized_keys'); // the directory does not exist yet
    const key = makeClientKey('newcomer');
    const b = await startTestBridge({ key, authorizedKeys: ak });
    try {
      assert.ok(b.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith(`no usable keys in ${ak}: every login will be refused; add one with: cat ~/.ssh/id_ed25519.pub >> ${ak}`)));
      const before = await runSsh({ port: b.port, key, login: 'demo.shell', command: 'echo in' });
      assert.equal(before.code, 255);
      fs.mkdirSync(path.dirname(ak), { recursive: true });
      fs.writeFileSync(ak, `${key.publicLine}\n`);
      const after = await runSsh({ port: b.port, key, login: 'demo.shell', command: 'echo in' });
      assert.equal(after.stdout.toString(), 'in\n', after.stderr);
    } finally {
      await b.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

/**
 * A newcomer's first hour, through the real CLI and the real OpenSSH client: every ~/.ssh/config
 * snippet in the docs resolves as written (`ssh -G`) and logs in, keygen refuses what it would not
 * use without leaving a file behind, configuration mistakes come back as one line naming what the
 * user wrote, and --help lists the serve options.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startSshd, type Sshd } from '../../bench/lib/sshd.ts';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { compiled, REPO } from '../helpers/paths.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-first-hour-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [compiled('src/cli.ts'), ...args], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 30_000,
    // No cluster and no stray PODBRIDGE_* settings of the machine running the tests.
    env: { PATH: process.env.PATH ?? '', HOME: dir, KUBECONFIG: '/nonexistent', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every ```ssh-config block of the README and docs/, with the command its first comment shows. */
function snippets(): Array<{ file: string; config: string; command: string[] }> {
  const out: Array<{ file: string; config: string; command: string[] }> = [];
  for (const file of ['README.md', ...fs.readdirSync(path.join(REPO, 'docs')).map((f) => `docs/${f}`)]) {
    if (!file.endsWith('.md')) continue;
    const text = fs.readFileSync(path.join(REPO, file), 'utf8');
    for (const m of text.matchAll(/```ssh-config\n([\s\S]*?)```/g)) {
      const config = m[1] ?? '';
      const usage = /^# ssh (.+)$/m.exec(config);
      assert.ok(usage, `${file}: an ssh-config block says how to use it ("# ssh ...")`);
      out.push({ file, config, command: usage[1]!.trim().split(/\s+/) });
    }
  }
  return out;
}

describe('~/.ssh/config snippets in the docs, with the real client', () => {
  let bridge: TestBridge;
  let bastion: Sshd;
  const key = path.join(dir, 'id_ed25519');
  before(async () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const publicLine = fs.readFileSync(`${key}.pub`, 'utf8').trim();
    const authorized = path.join(dir, 'authorized_keys');
    fs.writeFileSync(authorized, `${publicLine}\n`);
    bridge = await startTestBridge({ authorizedKeys: authorized });
    const sshd = fs.existsSync('/usr/sbin/sshd') ? '/usr/sbin/sshd' : null;
    assert.ok(sshd, 'the ProxyJump snippet needs an OpenSSH server as the bastion: apt-get install openssh-server');
    bastion = await startSshd({ sshdPath: sshd, dir: path.join(dir, 'bastion'), publicKeyLine: publicLine, allowTcpForwarding: true });
  });
  after(async () => {
    await bridge?.close();
    await bastion?.stop();
  });

  it('finds the snippets: the README one and each of docs/ssh-config.md', () => {
    const found = snippets();
    assert.ok(found.some((s) => s.file === 'README.md'), 'README has a snippet');
    assert.ok(found.filter((s) => s.file === 'docs/ssh-config.md').length >= 4, 'docs/ssh-config.md has four');
    assert.ok(found.some((s) => /ProxyJump/.test(s.config)), 'a ProxyJump example');
    assert.ok(!found.some((s) => /%n/.test(s.config)), 'no %n in User: OpenSSH 9.2 sends it literally');
  });

  for (const [i, s] of snippets().entries()) {
    const [login, ...rest] = s.command;
    it(`${s.file} #${i + 1}: ssh ${s.command.join(' ')}`, async () => {
      const cfgAsWritten = path.join(dir, `as-written-${i}`);
      fs.writeFileSync(cfgAsWritten, s.config);
      // As written: how OpenSSH resolves the alias (nothing is contacted).
      const g = execFileSync('ssh', ['-G', '-F', cfgAsWritten, login!], { encoding: 'utf8' });
      const field = (name: string) => new RegExp(`^${name} (.*)$`, 'm').exec(g)?.[1];
      const expectedUser = login!.includes('@') ? login!.split('@')[0] : /^\s*User (\S+)/m.exec(s.config)?.[1];
      assert.equal(field('user'), expectedUser, 'the login name reaches the bridge as the SSH user');
      assert.equal(field('port'), '2222');
      const host = login!.includes('@') ? login!.split('@')[1]! : login!;
      const hostName = /^\s*HostName (\S+)/m.exec(s.config)?.[1]?.replace('%h', host);
      assert.equal(field('hostname'), hostName);

      // Pointed at the bridge (and the bastion) on loopback, a real login goes through it.
      const live = s.config
        .replace(/^(\s*HostName) .*$/gm, '$1 127.0.0.1')
        .replace(/^(\s*Port) 2222$/gm, `$1 ${bridge.port}`)
        .replace(/^(\s*ProxyJump) .*$/gm, `$1 ${bastion.user}@127.0.0.1:${bastion.port}`);
      const cfgLive = path.join(dir, `live-${i}`);
      fs.writeFileSync(cfgLive, `${live}\nHost *\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  BatchMode yes\n  LogLevel ERROR\n`);
      const before = bridge.logs.length;
      // Asynchronously: the bridge runs in this process and must go on serving meanwhile.
      const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile('ssh', ['-F', cfgLive, login!, ...rest, 'echo', 'through-the-snippet'], { timeout: 60_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
      assert.equal(r.stderr, '');
      assert.equal(r.stdout, 'through-the-snippet\n');
      assert.equal(r.code, 0);
      const start = bridge.logs.slice(before).find((l) => l.msg === 'session start');
      assert.equal(start?.target, expectedUser, 'the bridge saw the login name as the target');
    });
  }
});

describe('local backend shells, as sshd gives them', () => {
  let bridge: TestBridge;
  const key = path.join(dir, 'id_local');
  const run = (args: string[], input = ''): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = execFile(
        'ssh',
        ['-F', '/dev/null', '-p', String(bridge.port), '-i', key, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', ...args],
        { timeout: 60_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
      child.stdin!.end(input);
    });
  before(async () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    const authorized = path.join(dir, 'authorized_keys_local');
    fs.writeFileSync(authorized, fs.readFileSync(`${key}.pub`));
    bridge = await startTestBridge({ authorizedKeys: authorized });
  });
  after(() => bridge?.close());

  it("nothing of the bridge's PATH (npm's node_modules/.bin) reaches a shell", async () => {
    // The bridge runs in this process: give it the PATH `npm start` gives it.
    const saved = process.env.PATH;
    process.env.PATH = `${REPO}/node_modules/.bin:/usr/lib/node_modules/npm/node_modules/@npmcli/run-script/lib/node-gyp-bin:${saved}`;
    const r = await run(['x@127.0.0.1', 'echo "$PATH"']).finally(() => (process.env.PATH = saved));
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /node_modules|node-gyp-bin/);
    assert.match(r.stdout, /\/usr\/bin/);
  });

  it("a command runs through the user's login shell, as `$SHELL -c`", async () => {
    const shell = os.userInfo().shell ?? '/bin/sh';
    const r = await run(['x@127.0.0.1', 'echo "$0"']);
    assert.equal(path.basename(r.stdout.trim()), path.basename(shell));
  });

  it('ssh -T without a command starts a login shell', async () => {
    assert.equal(os.userInfo().shell, '/bin/bash', 'this test reads bash\'s login_shell option');
    const r = await run(['-T', 'x@127.0.0.1'], 'shopt -q login_shell && echo LOGIN-SHELL\n');
    assert.equal(r.stdout, 'LOGIN-SHELL\n');
    assert.equal(r.code, 0);
  });
});

describe('keygen', () => {
  it('refuses an RSA key the bridge would refuse, before writing anything', () => {
    const file = path.join(dir, 'small_rsa');
    const r = cli(['keygen', file, '--type', 'rsa', '--bits', '2048']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'podbridge: --bits 2048: RSA host keys need at least 3072 bits (the bridge refuses smaller ones); try --bits 3072 or --type ed25519\n');
    assert.equal(fs.existsSync(file), false, 'no key file left behind');
    assert.equal(fs.existsSync(`${file}.pub`), false);
  });

  it('refuses --bits that is not a number, with one line', () => {
    const file = path.join(dir, 'abc_rsa');
    const r = cli(['keygen', file, '--type', 'rsa', '--bits', 'abc']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'podbridge: --bits "abc": expected a whole number of bits, 3072 to 16384\n');
    assert.equal(fs.existsSync(file), false);
  });

  it('makes an ed25519 key and says so; a second run finds it', () => {
    const file = path.join(dir, 'host_ed25519');
    const first = cli(['keygen', file]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`^generated: ${file} ssh-ed25519 SHA256:\\S+\\n$`));
    assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
    const second = cli(['keygen', file]);
    assert.match(second.stdout, /^exists: /);
  });

  it('--help describes every option', () => {
    const r = cli(['keygen', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /--type\s+Key type: ed25519/);
    assert.match(r.stdout, /--bits\s+RSA key size, 3072 to 16384/);
    assert.match(r.stdout, /file\s+Where to write the private key/);
  });
});

describe('configuration mistakes', () => {
  it('name the flag, the environment variable or the config-file key as written', () => {
    assert.equal(cli(['serve', '--idle-timeout', 'abc']).stderr, 'podbridge: --idle-timeout "abc": expected a number of seconds\n');
    assert.equal(cli(['--max-sessions', '0']).stderr, 'podbridge: --max-sessions "0": must be at least 1\n');
    assert.equal(cli([], { PODBRIDGE_MAX_SESSIONS: 'x' }).stderr, 'podbridge: PODBRIDGE_MAX_SESSIONS="x": expected a whole number\n');
    const file = path.join(dir, 'podbridge.yaml');
    fs.writeFileSync(file, 'idle-timeout: later\n');
    assert.equal(cli(['--config', file]).stderr, `podbridge: ${file}: idle-timeout: expected a number of seconds\n`);
    const typo = cli(['--idle-timout', '5']);
    assert.equal(typo.stderr, 'podbridge: unknown option --idle-timout (did you mean --idle-timeout?); podbridge --help lists the options\n');
    assert.equal(typo.code, 2);
  });

  it('podbridge --help lists the serve options with their defaults', () => {
    const r = cli(['--help']);
    assert.equal(r.code, 0);
    for (const flag of ['--listen', '--host-key', '--policy', '--idle-timeout', '--max-sessions', '--audit-log', '--config']) {
      assert.match(r.stdout, new RegExp(`\\n\\s+${flag}\\s`), `${flag} is listed`);
    }
    assert.match(r.stdout, /\[default: 127\.0\.0\.1:2222\]/);
    assert.match(r.stdout, /PODBRIDGE_/);
  });
});

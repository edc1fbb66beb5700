/**
 * OpenSSH's key rules, through the real client: no DSA, RSA of 2048 bits or more, and SHA-2
 * signatures only. A weak key is refused when the policy loads (file and line) and at login
 * (a log line naming why), and the client gets the standard refusal.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { makeClientKey, runSsh } from '../helpers/ssh-client.ts';

const dsa = makeClientKey('dsa@old', 'dsa');
const rsa2048 = makeClientKey('rsa2048@laptop', 'rsa');
/** A 1024-bit RSA key (ssh-keygen's floor; ours is 2048). */
const small = (() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-client-'));
  const keyFile = path.join(dir, 'id_rsa1024');
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '1024', '-N', '', '-C', 'rsa1024@old', '-f', keyFile]);
  return { dir, keyFile, publicLine: fs.readFileSync(`${keyFile}.pub`, 'utf8').trim() };
})();

describe('weak user keys', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-weak-'));
  let b: TestBridge;

  before(async () => {
    const authorizedKeys = path.join(dir, 'authorized_keys');
    fs.writeFileSync(authorizedKeys, `${dsa.publicLine}\n${small.publicLine}\n${rsa2048.publicLine}\n`);
    // Many refusals from one address are the point here: keep the back-off out of the way.
    b = await startTestBridge({ authorizedKeys, key: rsa2048, backoffThreshold: 1000 });
  });
  after(async () => {
    await b?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an authorized_keys file: the weak lines are skipped with file:line warnings at load', () => {
    const warnings = b.logs.filter((l) => l.level === 40).map((l) => String(l.msg));
    assert.ok(warnings.some((w) => /authorized_keys:1: DSA keys are refused/.test(w)), JSON.stringify(warnings));
    assert.ok(warnings.some((w) => /authorized_keys:2: RSA key has 1024 bits; at least 2048 are required/.test(w)), JSON.stringify(warnings));
  });

  it('refuses a DSA key at login, with a log line', async () => {
    const r = await runSsh({ port: b.port, key: dsa, login: 'x', command: 'echo in', extraArgs: ['-o', 'PubkeyAcceptedAlgorithms=+ssh-dss'] });
    assert.equal(r.code, 255);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /Permission denied \(publickey\)/);
    assert.ok(b.logs.some((l) => l.msg === 'auth refused: DSA keys are refused (OpenSSH no longer accepts them): use an ed25519 key (ssh-keygen -t ed25519)'));
  });

  it('refuses a 1024-bit RSA key at login, with a log line', async () => {
    const r = await runSsh({ port: b.port, key: small, login: 'x', command: 'echo in' });
    assert.equal(r.code, 255);
    assert.equal(r.stdout.length, 0);
    assert.ok(b.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('auth refused: RSA key has 1024 bits')));
  });

  it('refuses SHA-1 ssh-rsa signatures on a good RSA key, and lets the same key in with rsa-sha2', async () => {
    const before = b.logs.length;
    const sha1 = await runSsh({ port: b.port, key: rsa2048, login: 'x', command: 'echo in', extraArgs: ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa'] });
    assert.equal(sha1.code, 255);
    assert.equal(sha1.stdout.length, 0);
    // OpenSSH 8.8+ reads server-sig-algs (SHA-2 only since ssh2 patch 001) and does not even
    // offer the SHA-1 signature; a client that offers it anyway is refused with a log line.
    const after = b.logs.slice(before);
    assert.ok(!after.some((l) => l.msg === 'auth accepted'), 'no SHA-1 login');
    assert.ok(
      after.some((l) => typeof l.msg === 'string' && l.msg.startsWith('auth refused: ssh-rsa (RSA with SHA-1) signatures are refused')) || /no mutual signature algorithm|Permission denied/.test(sha1.stderr),
      sha1.stderr,
    );
    const sha2 = await runSsh({ port: b.port, key: rsa2048, login: 'x', command: 'echo in', });
    assert.equal(sha2.stdout.toString(), 'in\n', sha2.stderr);
  });

  it('a policy file with a weak key does not load: file, line and field in the message', async () => {
    for (const [k, why] of [
      [dsa, /DSA keys are refused/],
      [small, /RSA key has 1024 bits; at least 2048 are required/],
    ] as const) {
      const policy = path.join(dir, 'policy.yaml');
      fs.writeFileSync(policy, `version: 1\nidentities:\n  - name: old\n    keys:\n      - ${k.publicLine}\nrules: []\n`);
      await assert.rejects(startTestBridge({ policy }), (err: Error) => {
        assert.match(err.message, /policy\.yaml:5: identities\[0\]\.keys\[0\]/);
        assert.match(err.message, why);
        return true;
      });
    }
  });
});

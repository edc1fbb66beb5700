/**
 * ssh2 patch 005 (patches/, docs/ssh2-patches.md): sntrup761x25519-sha512 and its
 * @openssh.com alias. The sntrup761 port is checked byte for byte against OpenSSH's own C
 * reference (known answers from test/fixtures/sntrup761/make-kat.sh), then the key exchange
 * between ssh2's client and server and with the real OpenSSH 9.2 client.
 */
// test-budget: file 240 s, test 150 s
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_ALGORITHMS, checkAlgorithms } from '../../src/ssh/algorithms.ts';
import { REPO } from '../helpers/paths.ts';
import { ssh2Exec, startSsh2Server } from '../helpers/ssh2-peers.ts';

const require = createRequire(import.meta.url);

type Random = (n: number) => Buffer;
interface Sntrup761 {
  keygen(random?: Random): { publicKey: Buffer; privateKey: Buffer };
  encapsulate(publicKey: Buffer, random?: Random): { ciphertext: Buffer; sharedSecret: Buffer };
  decapsulate(privateKey: Buffer, ciphertext: Buffer): Buffer;
}
const { sntrup761 } = require('ssh2/lib/protocol/sntrup761.js') as { sntrup761: Sntrup761 };
const constants = require('ssh2/lib/protocol/constants.js') as { SUPPORTED_KEX: string[]; DEFAULT_KEX: string[] };

const SNTRUP = 'sntrup761x25519-sha512';
const SNTRUP_OPENSSH = 'sntrup761x25519-sha512@openssh.com';
const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

/** kat.c's randomness: one SHAKE-256 stream per vector, read in order. */
function katRandom(i: number): Random {
  const stream = crypto.createHash('shake256', { outputLength: 1 << 16 }).update(`sntrup761 kat ${i}`).digest();
  let pos = 0;
  return (n) => {
    const out = Buffer.from(stream.subarray(pos, pos + n));
    pos += n;
    return out;
  };
}

function opensshExec(port: number, kex: string, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('ssh', [
      '-v', '-F', '/dev/null', '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'BatchMode=yes', '-o', `KexAlgorithms=${kex}`, 'u@127.0.0.1', command,
    ]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('ssh2 patch 005: sntrup761', () => {
  it("KeyGen, Encap and Decap match OpenSSH's C reference byte for byte (32 vectors, with implicit rejection and a malformed key)", () => {
    const lines = fs.readFileSync(path.join(REPO, 'test/fixtures/sntrup761/kat.txt'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 32);
    for (const line of lines) {
      const [index, ...want] = line.split(' ');
      const i = Number(index);
      const random = katRandom(i);
      const { publicKey, privateKey } = sntrup761.keygen(random);
      const { ciphertext, sharedSecret } = sntrup761.encapsulate(publicKey, random);
      assert.deepEqual(sntrup761.decapsulate(privateKey, ciphertext), sharedSecret, `vector ${i}: decap(encap)`);
      const tampered = Buffer.from(ciphertext);
      tampered[(i * 7) % tampered.length]! ^= 1;
      const rejected = sntrup761.decapsulate(privateKey, tampered);
      assert.notDeepEqual(rejected, sharedSecret);
      // 1158 stream bytes as a public key: not a real key, but any input must decode as C does.
      const other = sntrup761.encapsulate(random(1158), random);
      const got = [publicKey, privateKey, ciphertext, sharedSecret, rejected, other.ciphertext, other.sharedSecret].map(sha256);
      const names = ['pk', 'sk', 'ct', 'k', 'k_reject', 'ct_random', 'k_random'];
      assert.deepEqual(
        names.map((n, j) => `${n} ${got[j]}`),
        names.map((n, j) => `${n} ${want[j]}`),
        `vector ${i}`,
      );
      assert.deepEqual(
        [publicKey.length, privateKey.length, ciphertext.length, sharedSecret.length],
        [1158, 1763, 1039, 32],
      );
    }
  });

  it('refuses keys and ciphertexts of the wrong length with an error, not a crash', () => {
    const { publicKey, privateKey } = sntrup761.keygen();
    const { ciphertext } = sntrup761.encapsulate(publicKey);
    assert.throws(() => sntrup761.encapsulate(publicKey.subarray(1)), /sntrup761 public key is 1157 bytes/);
    assert.throws(() => sntrup761.decapsulate(privateKey, ciphertext.subarray(0, 1000)), /sntrup761 ciphertext is 1000 bytes/);
    assert.throws(() => sntrup761.decapsulate(privateKey.subarray(1), ciphertext), /sntrup761 private key is 1762 bytes/);
  });

  it('is offered after mlkem768x25519 and before curve25519, by ssh2 and by the bridge', () => {
    const pq = ['mlkem768x25519-sha256', SNTRUP, SNTRUP_OPENSSH];
    assert.deepEqual(constants.DEFAULT_KEX.slice(0, 3), pq);
    assert.ok(constants.SUPPORTED_KEX.includes(SNTRUP) && constants.SUPPORTED_KEX.includes(SNTRUP_OPENSSH));
    assert.deepEqual(DEFAULT_ALGORITHMS.kex.slice(0, 4), [...pq, 'curve25519-sha256']);
    checkAlgorithms(DEFAULT_ALGORITHMS);
  });

  it('ssh2 client and server agree on both names and move data', async () => {
    const srv = await startSsh2Server([SNTRUP, SNTRUP_OPENSSH, 'curve25519-sha256']);
    try {
      assert.deepEqual(await ssh2Exec(srv.port, [SNTRUP]), { kex: SNTRUP, output: 'ran probe\n' });
      assert.deepEqual(await ssh2Exec(srv.port, [SNTRUP_OPENSSH]), { kex: SNTRUP_OPENSSH, output: 'ran probe\n' });
      assert.deepEqual(await ssh2Exec(srv.port, ['curve25519-sha256']), { kex: 'curve25519-sha256', output: 'ran probe\n' });
    } finally {
      srv.close();
    }
  });

  it("OpenSSH 9.2's client negotiates it under both names and runs a command", async () => {
    const srv = await startSsh2Server([SNTRUP, SNTRUP_OPENSSH, 'curve25519-sha256']);
    try {
      for (const kex of [SNTRUP_OPENSSH, SNTRUP]) {
        const r = await opensshExec(srv.port, kex, `echo ${kex}`);
        assert.match(r.stderr, /OpenSSH_9\.2/);
        assert.ok(r.stderr.includes(`kex: algorithm: ${kex}\n`) || r.stderr.includes(`kex: algorithm: ${kex}\r\n`), r.stderr);
        assert.equal(r.stdout, `ran echo ${kex}\n`);
        assert.equal(r.code, 0);
      }
      assert.deepEqual(srv.kex, [SNTRUP_OPENSSH, SNTRUP]);
    } finally {
      srv.close();
    }
  });

  it('a malformed or bogus client key share fails that key exchange only; the server keeps serving', async () => {
    const srv = await startSsh2Server([SNTRUP]);
    const keygen = sntrup761.keygen;
    try {
      // A share 100 bytes short is refused before any work.
      sntrup761.keygen = (random) => {
        const k = keygen(random);
        return { ...k, publicKey: k.publicKey.subarray(100) };
      };
      const short = await ssh2Exec(srv.port, [SNTRUP]);
      assert.equal(short.output, undefined);
      assert.ok(short.error, 'the client sees the connection fail');
      await new Promise((r) => setImmediate(r));
      assert.ok(
        srv.errors.some((e) => /Error while computing DH secret \(sntrup761x25519\): client key share is 1090 bytes/.test(e.message)),
        srv.errors.map((e) => e.message).join('\n'),
      );

      // Random bytes of the right length decode to some key: the server encapsulates to it, the
      // client cannot decapsulate, the keys differ and the connection ends at the first MAC.
      sntrup761.keygen = (random) => ({ ...keygen(random), publicKey: crypto.randomBytes(1158) });
      const bogus = await ssh2Exec(srv.port, [SNTRUP]);
      assert.equal(bogus.output, undefined);
      assert.ok(bogus.error, 'the client sees the connection fail');

      sntrup761.keygen = keygen;
      assert.deepEqual(await ssh2Exec(srv.port, [SNTRUP]), { kex: SNTRUP, output: 'ran probe\n' });
    } finally {
      sntrup761.keygen = keygen;
      srv.close();
    }
  });
});

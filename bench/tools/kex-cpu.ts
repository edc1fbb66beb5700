/**
 * The server's CPU per key exchange, by algorithm: `npx tsc -p tsconfig.test.json && node
 * build/bench/tools/kex-cpu.js [--rounds N] [--handshakes N]`.
 *
 * 1. The post-quantum primitives alone, as the server runs them (encapsulation) and as a client
 *    would (key generation, decapsulation): user+system CPU of this process per operation, after
 *    a warm-up, median over rounds.
 * 2. Whole handshakes: a bare ssh2 server (our patched copy) in this process, the real OpenSSH
 *    client (10.0 from the Debian 13 root of test/setup/debian13-root.sh when it is there, under
 *    chroot; else the host's, without ML-KEM if it is older than 9.9) run `handshakes` times per
 *    algorithm with `-o KexAlgorithms=NAME`, the algorithms
 *    alternating round by round so machine load hits them alike. Reported: this process's CPU
 *    per login (key exchange, host key signature, auth, one exec), which is what the server pays.
 * Bounded: fixed counts, a 30 s timeout per login.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import ssh2 from 'ssh2';
import type { Connection } from 'ssh2';
import { generateHostKeyPair } from '../../src/ssh/keys.ts';

const require = createRequire(import.meta.url);

interface Kem {
  keygen(): { publicKey: Buffer; privateKey: unknown };
  encapsulate(publicKey: Buffer): { ciphertext: Buffer; sharedSecret: Buffer };
  decapsulate(privateKey: unknown, ciphertext: Buffer): Buffer;
}

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    handshakes: { type: 'string', default: '10' },
    'ssh-root': { type: 'string', default: '/var/cache/podbridge/debian13-root' },
  },
});
/** The OpenSSH client command: chrooted into the Debian 13 root when there is one. */
const sshCommand = fs.existsSync(`${values['ssh-root']}/usr/bin/ssh`) ? ['chroot', values['ssh-root']!, 'ssh'] : ['ssh'];
const rounds = Number(values.rounds);
const handshakes = Number(values.handshakes);

function cpuMs<T>(fn: () => T): number {
  const t0 = process.cpuUsage();
  fn();
  const u = process.cpuUsage(t0);
  return (u.user + u.system) / 1000;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const fmt = (ms: number): string => ms.toFixed(2).padStart(8);

function primitives(): void {
  const kems: Array<[string, Kem]> = [
    ['sntrup761', (require('ssh2/lib/protocol/sntrup761.js') as { sntrup761: Kem }).sntrup761],
    ['ML-KEM-768', (require('ssh2/lib/protocol/mlkem.js') as { mlkem768: Kem }).mlkem768],
  ];
  console.log('KEM primitive, CPU ms per operation (median of rounds)');
  console.log('kem            encap (server)   keygen (client)   decap (client)');
  for (const [name, kem] of kems) {
    const keys = kem.keygen();
    const { ciphertext } = kem.encapsulate(keys.publicKey);
    for (let i = 0; i < 20; i++) kem.decapsulate(keys.privateKey, kem.encapsulate(keys.publicKey).ciphertext);
    const enc: number[] = [];
    const gen: number[] = [];
    const dec: number[] = [];
    for (let r = 0; r < rounds; r++) {
      enc.push(cpuMs(() => { for (let i = 0; i < 50; i++) kem.encapsulate(keys.publicKey); }) / 50);
      gen.push(cpuMs(() => { for (let i = 0; i < 3; i++) kem.keygen(); }) / 3);
      dec.push(cpuMs(() => { for (let i = 0; i < 10; i++) kem.decapsulate(keys.privateKey, ciphertext); }) / 10);
    }
    console.log(`${name.padEnd(14)} ${fmt(median(enc))}         ${fmt(median(gen))}          ${fmt(median(dec))}`);
  }
}

async function handshakeCpu(): Promise<void> {
  const clientKex = execFileSync(sshCommand[0]!, [...sshCommand.slice(1), '-Q', 'kex'], { encoding: 'utf8' }).split('\n');
  const kexes = ['curve25519-sha256', 'mlkem768x25519-sha256', 'sntrup761x25519-sha512'].filter((k) => clientKex.includes(k));
  // ssh -V prints to stderr
  const version = spawnSync(sshCommand[0]!, [...sshCommand.slice(1), '-V'], { encoding: 'utf8' }).stderr.split(',')[0]!;
  const hostKey = generateHostKeyPair('ed25519', 0, 'kex-cpu host key').private;
  const seen: string[] = [];
  const server = new ssh2.Server({ hostKeys: [hostKey], algorithms: { kex: kexes as ssh2.KexAlgorithm[] } }, (c: Connection) => {
    c.on('error', () => {});
    c.on('handshake', (n) => seen.push(n.kex));
    c.on('authentication', (ctx) => ctx.accept());
    c.on('ready', () => c.on('session', (accept) => accept().on('exec', (a) => { const ch = a(); ch.exit(0); ch.end(); })));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const login = (kex: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const child = spawn(sshCommand[0]!, [...sshCommand.slice(1),
        '-F', '/dev/null', '-p', String(port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
        '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-o', `KexAlgorithms=${kex}`, 'u@127.0.0.1', 'x',
      ], { stdio: 'ignore', timeout: 30_000 });
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ssh with ${kex} exited ${code}`))));
    });
  const samples = new Map<string, number[]>(kexes.map((k) => [k, []]));
  for (const kex of kexes) await login(kex); // warm-up: loads and compiles each path once
  for (let r = 0; r < rounds; r++) {
    for (const kex of kexes) {
      const t0 = process.cpuUsage();
      for (let i = 0; i < handshakes; i++) await login(kex);
      const u = process.cpuUsage(t0);
      samples.get(kex)!.push((u.user + u.system) / 1000 / handshakes);
    }
  }
  server.close();
  for (const kex of kexes) {
    if (!seen.includes(kex)) throw new Error(`${kex} was never negotiated`);
  }
  console.log(`\nWhole login with ${version.trim() || sshCommand.join(' ')} (${handshakes} per round, ${rounds} rounds), server CPU ms per login`);
  console.log('kex                         median      min      max');
  for (const kex of kexes) {
    const xs = samples.get(kex)!;
    console.log(`${kex.padEnd(26)} ${fmt(median(xs))} ${fmt(Math.min(...xs))} ${fmt(Math.max(...xs))}`);
  }
}

primitives();
await handshakeCpu();

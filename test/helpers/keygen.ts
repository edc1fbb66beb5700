/** Keys and certificates made by the real ssh-keygen in a throwaway directory, for certificate tests. */
import { execFileSync } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { CheckOptions } from '../../src/ssh/certificates.ts';
import { fingerprint } from '../../src/openssh/public-key.ts';
import { SshReader } from '../../src/openssh/ssh-wire.ts';

export interface KeyFactory {
  dir: string;
  /** A fresh key pair; returns the private key path (public is `${path}.pub`). */
  keygen(type?: string, extra?: string[]): string;
  /** `ssh-keygen -s ca <args>` on a copy of user.pub; returns the -cert.pub path. */
  certify(ca: string, user: string, args: string[]): string;
  cleanup(): void;
}

export function keyFactory(prefix: string): KeyFactory {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  let counter = 0;
  return {
    dir,
    keygen(type = 'ed25519', extra: string[] = []) {
      const file = path.join(dir, `k${++counter}`);
      execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `key${counter}`, ...extra, '-f', file]);
      return file;
    },
    certify(ca, user, args) {
      const copy = path.join(dir, `c${++counter}.pub`);
      fs.copyFileSync(`${user}.pub`, copy);
      execFileSync('ssh-keygen', ['-q', '-s', ca, ...args, copy], { stdio: ['ignore', 'ignore', 'pipe'] });
      return copy.replace(/\.pub$/, '-cert.pub');
    },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** The key blob of an OpenSSH public key (or certificate) file. */
export function blobOf(pubFile: string): Buffer {
  return Buffer.from(fs.readFileSync(pubFile, 'utf8').trim().split(/\s+/)[1]!, 'base64');
}

export function authority(caFile: string): CheckOptions['authorities'][number] {
  const blob = blobOf(`${caFile}.pub`);
  return { blob, fingerprint: fingerprint(blob) };
}

/** The ed25519 private key of an unencrypted OpenSSH key file, for node:crypto. */
export function ed25519PrivateKey(file: string): KeyObject {
  const raw = Buffer.from(fs.readFileSync(file, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const r = new SshReader(raw.subarray(15), 'key file');
  r.text('cipher');
  r.text('kdf');
  r.string('kdf options');
  const n = r.uint32('key count');
  for (let i = 0; i < n; i++) r.string('public key');
  const p = new SshReader(r.string('private section'), 'private section');
  p.uint32('check 1');
  p.uint32('check 2');
  if (p.text('type') !== 'ssh-ed25519') throw new Error(`${file} is not an ed25519 key`);
  const pub = p.string('public');
  const secret = p.string('secret');
  return crypto.createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: secret.subarray(0, 32).toString('base64url'), x: pub.toString('base64url') },
    format: 'jwk',
  });
}

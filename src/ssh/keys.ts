/**
 * SSH key material: host keys (generated on first start, permission-checked), public-key
 * fingerprints as OpenSSH prints them, and parsing of OpenSSH public key blobs through ssh2.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { ParsedKey } from 'ssh2';

const { utils } = ssh2;

/** `SHA256:base64` without padding, exactly as `ssh-keygen -l` prints it. */
export function fingerprint(publicBlob: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(publicBlob).digest('base64').replace(/=+$/, '')}`;
}

export function parsePublicKey(text: string | Buffer): ParsedKey | null {
  const parsed = utils.parseKey(text);
  if (parsed instanceof Error) return null;
  return Array.isArray(parsed) ? (parsed[0] ?? null) : parsed;
}

export interface HostKey {
  file: string;
  pem: Buffer;
  type: string;
  fingerprint: string;
  generated: boolean;
}

/**
 * Loads a host key, generating an ed25519 key (mode 0600) if the file does not exist yet, so the
 * first start works and every later start presents the same key. A key readable by group or
 * others is refused, as sshd refuses it, because anyone who reads it can impersonate the bridge.
 */
export function loadOrCreateHostKey(file: string): HostKey {
  let generated = false;
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'podbridge host key' });
    fs.writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
    fs.writeFileSync(`${file}.pub`, `${pair.public}\n`, { mode: 0o644 });
    generated = true;
  }
  const st = fs.statSync(file);
  if (!st.isFile()) throw new Error(`host key ${file} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new Error(
      `host key ${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}`,
    );
  }
  const pem = fs.readFileSync(file);
  const key = parsePublicKey(pem);
  if (!key || !key.isPrivateKey()) {
    throw new Error(`host key ${file} is not an unencrypted OpenSSH/PEM private key; generate one with: podbridge keygen ${file}`);
  }
  return { file, pem, type: key.type, fingerprint: fingerprint(key.getPublicSSH()), generated };
}

/**
 * OpenSSH public keys as both the SSH door and the policy read them: ssh2's parser for the
 * `TYPE BASE64` text, and the fingerprint as `ssh-keygen -l` prints it.
 */
import crypto from 'node:crypto';
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


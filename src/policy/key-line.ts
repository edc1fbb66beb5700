/**
 * One authorized_keys line (`[options] type base64 [comment]`) to a key the policy can match:
 * the public key blob, its fingerprint and the options in force. The line syntax itself is
 * src/openssh/authorized-keys-syntax.ts's, so both file kinds read keys identically.
 */
import type { ParsedKey } from 'ssh2';
import { parseAuthorizedKeys } from '../openssh/authorized-keys-syntax.ts';
import { weakKeyProblem } from '../openssh/key-rules.ts';
import { parseKeyOptions, type KeyOptions } from './key-options.ts';

export interface KeyLine {
  /** ssh2's parsed key: what verifies the client's signature. */
  key: ParsedKey;
  blob: Buffer;
  type: string;
  fingerprint: string;
  comment: string | null;
  options: KeyOptions;
}

export type ParsedKeyLine = { ok: true; key: KeyLine } | { ok: false; problem: string };

const CERT_TYPE = /-cert-v01@openssh\.com$/;

export function parseKeyLine(line: string, purpose: 'user' | 'ca' = 'user'): ParsedKeyLine {
  if (/[\r\n]/.test(line.trim())) return { ok: false, problem: 'holds more than one line: give one key per list entry' };
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return { ok: false, problem: 'is empty (a key line is "[options] TYPE BASE64 [comment]")' };
  const words = trimmed.split(/\s+/);
  if (words.some((w) => CERT_TYPE.test(w))) {
    return {
      ok: false,
      problem:
        purpose === 'ca'
          ? 'is a certificate, not a CA public key: give the CA key (ssh-keygen -y -f CA_KEY, or the .pub next to it)'
          : 'is a certificate, not a public key: trust its CA under certificateAuthorities and list its principals under the identity',
    };
  }
  if (/(^|,)cert-authority(,|\s|$)/i.test(words[0] ?? '')) {
    return { ok: false, problem: 'has the cert-authority option: list CA keys under certificateAuthorities instead' };
  }
  const parsed = parseAuthorizedKeys(trimmed);
  const key = parsed.keys[0];
  if (!key || parsed.keys.length !== 1) {
    const reason = parsed.problems[0]?.reason ?? 'no key found';
    return { ok: false, problem: `is not a valid key line: ${reason} (expected "[options] TYPE BASE64 [comment]")` };
  }
  if (purpose === 'ca' && key.options.length > 0) {
    return { ok: false, problem: 'a CA key takes no options: give just "TYPE BASE64 [comment]"' };
  }
  const weak = weakKeyProblem(key.blob);
  if (weak !== null) return { ok: false, problem: `is refused: ${purpose === 'ca' ? 'CA key: ' : ''}${weak}` };
  const options = parseKeyOptions(key.options);
  if (!options.ok) return { ok: false, problem: options.problem };
  return { ok: true, key: { key: key.key, blob: key.blob, type: key.key.type, fingerprint: key.fingerprint, comment: key.comment, options: options.options } };
}

/** The lookup key for a public key blob. */
export function blobKey(blob: Buffer): string {
  return blob.toString('base64');
}

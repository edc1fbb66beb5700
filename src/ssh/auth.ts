/**
 * Authentication decisions, separate from the SSH plumbing so that the plain authorized_keys file
 * and (later) a full policy go through one code path in the connection handler.
 */
import type { ParsedKey } from 'ssh2';
import type { Identity } from '../identity.ts';
import { AuthorizedKeysSource } from './authorized-keys.ts';

export interface PublicKeyAttempt {
  login: string;
  remote: string;
  keyAlgo: string;
  keyBlob: Buffer;
  /** Absent when the client only asks whether a key would be accepted. */
  signature?: Buffer;
  signedData?: Buffer;
  hashAlgo?: string;
}

export type AuthDecision =
  | { kind: 'accept'; identity: Identity; fingerprint: string; certKeyId?: string; certSerial?: string }
  /** The key would be accepted: the client may now sign with it. */
  | { kind: 'acceptable' }
  /** `reason` is for the log and audit trail only; the client learns nothing beyond the refusal. */
  | { kind: 'reject'; reason: string; fingerprint?: string };

export interface Authenticator {
  publicKey(attempt: PublicKeyAttempt): AuthDecision;
}

function verify(key: ParsedKey, attempt: PublicKeyAttempt): boolean {
  return !!attempt.signature && !!attempt.signedData && key.verify(attempt.signedData, attempt.signature, attempt.hashAlgo) === true;
}

/** The simplest policy: every key in an authorized_keys file may log in, named by its comment. */
export function authorizedKeysAuthenticator(source: AuthorizedKeysSource): Authenticator {
  return {
    publicKey(attempt) {
      const found = source.find(attempt.keyBlob);
      if (!found) return { kind: 'reject', reason: 'key not in authorized_keys' };
      if (!attempt.signature) return { kind: 'acceptable' };
      if (!verify(found.key, attempt)) return { kind: 'reject', reason: 'bad signature', fingerprint: found.fingerprint };
      return {
        kind: 'accept',
        fingerprint: found.fingerprint,
        identity: { name: found.comment ?? found.fingerprint, keyFingerprint: found.fingerprint, keyComment: found.comment },
      };
    },
  };
}

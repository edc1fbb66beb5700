/**
 * Authentication decisions over the access policy in force (a policy file, or a plain
 * authorized_keys file read as the simplest policy): public keys with their authorized_keys
 * options, and OpenSSH user certificates, which ssh2 does not understand and we verify here.
 * The SSH plumbing lives in connection.ts; this module only decides.
 */
import type { Identity } from '../identity.ts';
import { resolveKey, resolvePrincipals, type PolicySource } from '../policy/index.ts';
import { CertificateError, checkCertificate, isCertificateAlgo, parseCertificate, verifyUserSignature } from './certificates.ts';
import { weakKeyProblem } from './key-rules.ts';
import { fingerprint } from './keys.ts';

export interface PublicKeyAttempt {
  login: string;
  /** The client's IP address (no port), for from= and source-address. */
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
  | { kind: 'reject'; reason: string; fingerprint?: string; quiet?: boolean };

export interface Authenticator {
  publicKey(attempt: PublicKeyAttempt): AuthDecision;
}

export function policyAuthenticator(source: PolicySource, now: () => Date = () => new Date()): Authenticator {
  return {
    publicKey(attempt) {
      return isCertificateAlgo(attempt.keyAlgo) ? certificateLogin(source, attempt, now()) : keyLogin(source, attempt, now());
    },
  };
}

/**
 * OpenSSH 8.8+ refuses `ssh-rsa` (RSA with SHA-1) signatures by default; so do we, for keys and
 * certificates alike (certificates.ts refuses ssh-rsa-cert-v01). ssh2 reports an rsa-sha2-256/512
 * request as algorithm ssh-rsa with hashAlgo sha256/sha512, and a SHA-1 one without a hashAlgo.
 */
function weakSignatureProblem(attempt: PublicKeyAttempt): string | null {
  if (attempt.keyAlgo === 'ssh-rsa' && attempt.hashAlgo === undefined) {
    return 'ssh-rsa (RSA with SHA-1) signatures are refused; the client must offer rsa-sha2-256 or rsa-sha2-512 (OpenSSH 7.2+ does)';
  }
  return null;
}

function keyLogin(source: PolicySource, attempt: PublicKeyAttempt, now: Date): AuthDecision {
  const weak = weakKeyProblem(attempt.keyBlob) ?? weakSignatureProblem(attempt);
  if (weak !== null) return { kind: 'reject', reason: weak, fingerprint: fingerprint(attempt.keyBlob) };
  let r = resolveKey(source.current(), attempt.keyBlob, attempt.remote, now);
  // sshd reads authorized_keys at every login: a key added a moment ago (even where the file's
  // directory did not exist to be watched) must work at once. A digest check makes this cheap.
  if (!r.ok && r.code === 'unknown-key' && source.current().kind === 'authorized-keys' && source.reload('unknown key').ok) {
    r = resolveKey(source.current(), attempt.keyBlob, attempt.remote, now);
  }
  const fp = fingerprint(attempt.keyBlob);
  // Checked at the key query already, as sshd does: a key refused for from=/expiry-time= is never asked to sign.
  if (!r.ok) return { kind: 'reject', reason: r.refused, fingerprint: r.code === 'unknown-key' ? undefined : fp, quiet: r.code === 'unknown-key' };
  if (!attempt.signature) return { kind: 'acceptable' };
  if (!attempt.signedData || r.publicKey.verify(attempt.signedData, attempt.signature, attempt.hashAlgo) !== true) {
    return { kind: 'reject', reason: 'bad signature', fingerprint: fp };
  }
  return { kind: 'accept', identity: r.identity, fingerprint: fp };
}

function certificateLogin(source: PolicySource, attempt: PublicKeyAttempt, now: Date): AuthDecision {
  const policy = source.current();
  let cert;
  try {
    cert = parseCertificate(attempt.keyBlob);
  } catch (err) {
    if (err instanceof CertificateError) return { kind: 'reject', reason: `malformed certificate: ${err.message}` };
    throw err;
  }
  const fp = fingerprint(cert.publicKeyBlob);
  const weak = weakKeyProblem(cert.publicKeyBlob);
  if (weak !== null) return { kind: 'reject', reason: `certified key: ${weak}`, fingerprint: fp };
  const checked = checkCertificate(cert, {
    authorities: policy.certificateAuthorities.map((ca) => ({ blob: ca.blob, fingerprint: ca.fingerprint, comment: ca.name })),
    now,
    sourceAddress: attempt.remote,
    keyAlgo: attempt.keyAlgo,
  });
  if (!checked.ok) return { kind: 'reject', reason: checked.reason, fingerprint: fp };
  const who = resolvePrincipals(policy, cert.principals, {
    keyFingerprint: fp,
    keyId: cert.keyId,
    serial: cert.serial,
    caKey: cert.signatureKeyBlob,
    forceCommand: checked.forceCommand,
    permitPty: checked.permits.pty,
    permitPortForwarding: checked.permits.portForwarding,
  });
  if (!who.ok) return { kind: 'reject', reason: who.refused, fingerprint: fp };
  if (!attempt.signature) return { kind: 'acceptable' };
  if (!attempt.signedData || !verifyUserSignature(cert, attempt.signedData, attempt.signature, attempt.hashAlgo)) {
    return { kind: 'reject', reason: 'bad signature', fingerprint: fp };
  }
  return { kind: 'accept', identity: who.identity, fingerprint: fp, certKeyId: cert.keyId, certSerial: cert.serial.toString() };
}

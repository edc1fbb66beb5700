/**
 * Authentication decisions over the access policy in force (a policy file, or a plain
 * authorized_keys file read as the simplest policy): public keys with their authorized_keys
 * options, and OpenSSH user certificates, which ssh2 does not understand and we verify here.
 * The SSH plumbing lives in connection.ts; this module only decides.
 */
import type { Identity } from '../identity.ts';
import { resolveKey, resolvePrincipals, type PolicySource } from '../policy/index.ts';
import { CertificateError, checkCertificate, isCertificateAlgo, parseCertificate, verifyUserSignature } from './certificates.ts';
import { weakKeyProblem } from '../openssh/key-rules.ts';
import { fingerprint } from '../openssh/public-key.ts';

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

/**
 * What a connection proved at login, kept for its whole life so every new session can be
 * re-resolved against the policy in force then (a removed key, a revoked or expired certificate
 * and changed groups reach a connection that is already open, e.g. an OpenSSH ControlMaster).
 */
export interface Credential {
  /** The public key blob, or the whole certificate blob. */
  keyBlob: Buffer;
  /** As the client announced it at login (for certificates: which signature algorithm). */
  keyAlgo: string;
  /** The client's IP address, for from= and source-address. */
  remote: string;
  /** The identity it resolved to at login: a credential that now selects another is refused. */
  identityName: string;
}

export type Recheck = { ok: true; identity: Identity } | { ok: false; reason: string };

export type AuthDecision =
  | { kind: 'accept'; identity: Identity; credential: Credential; fingerprint: string; certKeyId?: string; certSerial?: string }
  /** The key would be accepted: the client may now sign with it. */
  | { kind: 'acceptable' }
  /** `reason` is for the log and audit trail only; the client learns nothing beyond the refusal. */
  | { kind: 'reject'; reason: string; fingerprint?: string; quiet?: boolean };

export interface Authenticator {
  publicKey(attempt: PublicKeyAttempt): AuthDecision;
  /** The credential resolved again against the current policy and clock (no signature needed:
   *  the connection proved possession at login). */
  recheck(credential: Credential): Recheck;
}

export function policyAuthenticator(source: PolicySource, now: () => Date = () => new Date()): Authenticator {
  return {
    publicKey(attempt) {
      return isCertificateAlgo(attempt.keyAlgo) ? certificateLogin(source, attempt, now()) : keyLogin(source, attempt, now());
    },
    recheck(credential) {
      const attempt: PublicKeyAttempt = { login: '', remote: credential.remote, keyAlgo: credential.keyAlgo, keyBlob: credential.keyBlob };
      const r = isCertificateAlgo(credential.keyAlgo) ? resolveCertificate(source, attempt, now()) : resolvePublicKey(source, attempt, now());
      if (!r.ok) return { ok: false, reason: r.reason };
      if (r.identity.name !== credential.identityName) {
        return { ok: false, reason: `the credential now selects identity "${r.identity.name}", not "${credential.identityName}" as at login` };
      }
      return { ok: true, identity: r.identity };
    },
  };
}

type Resolved =
  | { ok: true; identity: Identity; fingerprint: string; verify: (attempt: PublicKeyAttempt) => boolean; cert?: { keyId: string; serial: string } }
  | { ok: false; reason: string; fingerprint?: string; quiet?: boolean };

function decide(r: Resolved, attempt: PublicKeyAttempt): AuthDecision {
  if (!r.ok) return { kind: 'reject', reason: r.reason, fingerprint: r.fingerprint, quiet: r.quiet };
  // Checked at the key query already, as sshd does: a key refused for from=/expiry-time= is never asked to sign.
  if (!attempt.signature) return { kind: 'acceptable' };
  if (!r.verify(attempt)) return { kind: 'reject', reason: 'bad signature', fingerprint: r.fingerprint };
  const credential: Credential = { keyBlob: attempt.keyBlob, keyAlgo: attempt.keyAlgo, remote: attempt.remote, identityName: r.identity.name };
  return { kind: 'accept', identity: r.identity, credential, fingerprint: r.fingerprint, certKeyId: r.cert?.keyId, certSerial: r.cert?.serial };
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
  const weak = weakSignatureProblem(attempt);
  if (weak !== null) return { kind: 'reject', reason: weak, fingerprint: fingerprint(attempt.keyBlob) };
  return decide(resolvePublicKey(source, attempt, now), attempt);
}

function resolvePublicKey(source: PolicySource, attempt: PublicKeyAttempt, now: Date): Resolved {
  const fp = fingerprint(attempt.keyBlob);
  const weak = weakKeyProblem(attempt.keyBlob);
  if (weak !== null) return { ok: false, reason: weak, fingerprint: fp };
  let r = resolveKey(source.current(), attempt.keyBlob, attempt.remote, now);
  // sshd reads authorized_keys at every login: a key added a moment ago (even where the file's
  // directory did not exist to be watched) must work at once. A digest check makes this cheap.
  if (!r.ok && r.code === 'unknown-key' && source.current().kind === 'authorized-keys' && source.reload('unknown key').ok) {
    r = resolveKey(source.current(), attempt.keyBlob, attempt.remote, now);
  }
  if (!r.ok) return { ok: false, reason: r.refused, fingerprint: r.code === 'unknown-key' ? undefined : fp, quiet: r.code === 'unknown-key' };
  const { publicKey } = r;
  return {
    ok: true,
    identity: r.identity,
    fingerprint: fp,
    verify: (a) => a.signedData !== undefined && a.signature !== undefined && publicKey.verify(a.signedData, a.signature, a.hashAlgo) === true,
  };
}

function certificateLogin(source: PolicySource, attempt: PublicKeyAttempt, now: Date): AuthDecision {
  return decide(resolveCertificate(source, attempt, now), attempt);
}

function resolveCertificate(source: PolicySource, attempt: PublicKeyAttempt, now: Date): Resolved {
  const policy = source.current();
  let cert;
  try {
    cert = parseCertificate(attempt.keyBlob);
  } catch (err) {
    if (err instanceof CertificateError) return { ok: false, reason: `malformed certificate: ${err.message}` };
    throw err;
  }
  const fp = fingerprint(cert.publicKeyBlob);
  const weak = weakKeyProblem(cert.publicKeyBlob);
  if (weak !== null) return { ok: false, reason: `certified key: ${weak}`, fingerprint: fp };
  const checked = checkCertificate(cert, {
    authorities: policy.certificateAuthorities,
    now,
    sourceAddress: attempt.remote,
    keyAlgo: attempt.keyAlgo,
  });
  if (!checked.ok) return { ok: false, reason: checked.reason, fingerprint: fp };
  const who = resolvePrincipals(policy, cert.principals, {
    keyFingerprint: fp,
    keyId: cert.keyId,
    serial: cert.serial,
    caKey: cert.signatureKeyBlob,
    forceCommand: checked.forceCommand,
    permitPty: checked.permits.pty,
    permitPortForwarding: checked.permits.portForwarding,
  });
  if (!who.ok) return { ok: false, reason: who.refused, fingerprint: fp };
  return {
    ok: true,
    identity: who.identity,
    fingerprint: fp,
    cert: { keyId: cert.keyId, serial: cert.serial.toString() },
    verify: (a) => a.signedData !== undefined && a.signature !== undefined && verifyUserSignature(cert, a.signedData, a.signature, a.hashAlgo),
  };
}

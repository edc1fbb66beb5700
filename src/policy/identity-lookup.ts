/**
 * Authentication facts -> the Identity a connection acts as. Pure functions of the policy and
 * their inputs (the time is a parameter), so the server's auth handler stays a few lines and
 * every refusal carries one reason for the log. The SSH client never sees these reasons: it
 * gets the standard "Permission denied (publickey)", as from sshd, so a scanner learns nothing.
 */
import type { ParsedKey } from 'ssh2';
import { freezeIdentity, type Identity } from './identities.ts';
import { blobKey } from './key-line.ts';
import { checkKeyOptions, type KeyOptions } from './key-options.ts';
import type { CertificateAuthority, Policy } from './types.ts';

export type KeyResolution =
  | {
      ok: true;
      identity: Identity;
      keyOptions: KeyOptions;
      /** Check the client's signature with this before accepting (publicKey.verify). */
      publicKey: ParsedKey;
    }
  | {
      ok: false;
      /** unknown-key: log quietly (scanners try keys all day); the others deserve a warning. */
      code: 'unknown-key' | 'source-address' | 'expired';
      refused: string;
    };

/**
 * The identity a public key logs in as. Call it for the key query (no signature yet) too, as
 * sshd does: a key that would be refused for its from=/expiry-time= is refused at once.
 */
export function resolveKey(policy: Policy, publicKeyBlob: Buffer, sourceAddress: string, now: Date): KeyResolution {
  const entries = policy.keys.get(blobKey(publicKeyBlob));
  if (entries === undefined || entries.length === 0) {
    return { ok: false, code: 'unknown-key', refused: `key not in ${policy.file}` };
  }
  let firstRefusal: KeyResolution | null = null;
  for (const entry of entries) {
    const check = checkKeyOptions(entry.options, sourceAddress, now);
    if (!check.ok) {
      firstRefusal ??= { ok: false, code: check.code, refused: `${check.reason} (identity "${entry.identity}", ${entry.listedAt})` };
      continue;
    }
    const owner = policy.identities.get(entry.identity);
    if (owner === undefined) continue; // not reachable: the loaders build both maps together
    const identity = freezeIdentity({
      name: owner.name,
      keyFingerprint: entry.fingerprint,
      keyComment: entry.comment,
      kubernetes: owner.kubernetes,
      groups: owner.groups,
      source: { kind: 'key', listedAt: entry.listedAt },
      forcedCommand: entry.options.forcedCommand,
      permits: { pty: entry.options.pty, portForwarding: entry.options.portForwarding, permitOpen: entry.options.permitOpen },
    });
    return { ok: true, identity, keyOptions: entry.options, publicKey: entry.publicKey };
  }
  return firstRefusal ?? { ok: false, code: 'unknown-key', refused: `key not in ${policy.file}` };
}

/** What src/ssh/certificates.ts established about a user certificate whose CA signature,
 *  validity window, type (user) and source-address it has already checked. */
export interface CertificateLogin {
  /** SHA256 fingerprint of the certified public key. */
  keyFingerprint: string;
  keyId: string;
  /** uint64; a bigint or its decimal string. */
  serial: bigint | string;
  /** Public key blob of the CA that signed the certificate. */
  caKey: Buffer;
  /** Critical option force-command, or null. */
  forceCommand: string | null;
  /** Extensions permit-pty and permit-port-forwarding. */
  permitPty: boolean;
  permitPortForwarding: boolean;
}

export type PrincipalResolution =
  | { ok: true; identity: Identity }
  | { ok: false; code: 'untrusted-ca' | 'revoked' | 'no-principals' | 'unknown-principal' | 'ambiguous'; refused: string };

/** The trusted CA with this public key, or null: for the certificate verifier's first check. */
export function findCertificateAuthority(policy: Policy, caKey: Buffer): CertificateAuthority | null {
  for (const ca of policy.certificateAuthorities) if (ca.blob.equals(caKey)) return ca;
  return null;
}

/**
 * The identity a certificate's principals select. Exactly one identity must be selected: a
 * certificate whose principals map to two identities is refused rather than guessing which
 * one the holder meant (sshd would let the login name choose; here the login name is the pod).
 */
export function resolvePrincipals(policy: Policy, principals: readonly string[], certificate: CertificateLogin): PrincipalResolution {
  const ca = findCertificateAuthority(policy, certificate.caKey);
  const serial = typeof certificate.serial === 'bigint' ? certificate.serial.toString() : certificate.serial;
  const what = `certificate ${JSON.stringify(certificate.keyId)} serial ${serial}`;
  if (ca === null) return { ok: false, code: 'untrusted-ca', refused: `${what} is signed by a CA not in ${policy.file}` };
  if (ca.revokedSerials.has(normalizeSerial(serial))) return { ok: false, code: 'revoked', refused: `${what}: serial revoked for CA "${ca.name}"` };
  if (ca.revokedKeyIds.has(certificate.keyId)) return { ok: false, code: 'revoked', refused: `${what}: key id revoked for CA "${ca.name}"` };
  // OpenSSH refuses user certificates without principals (they would be valid for anyone).
  if (principals.length === 0) return { ok: false, code: 'no-principals', refused: `${what} has no principals` };

  const selected = new Map<string, string>();
  for (const p of principals) {
    const name = policy.principals.get(p);
    if (name !== undefined && !selected.has(name)) selected.set(name, p);
  }
  const shown = principals.slice(0, 8).map((p) => JSON.stringify(p)).join(', ');
  if (selected.size === 0) return { ok: false, code: 'unknown-principal', refused: `${what}: no identity has principal ${shown}` };
  if (selected.size > 1) {
    return { ok: false, code: 'ambiguous', refused: `${what}: principals ${shown} select several identities (${[...selected.keys()].join(', ')})` };
  }
  const [[name, principal]] = [...selected] as [[string, string]];
  const owner = policy.identities.get(name);
  if (owner === undefined) return { ok: false, code: 'unknown-principal', refused: `${what}: identity "${name}" is gone` };
  const identity = freezeIdentity({
    name: owner.name,
    keyFingerprint: certificate.keyFingerprint,
    keyComment: null,
    kubernetes: owner.kubernetes,
    groups: owner.groups,
    source: { kind: 'certificate', keyId: certificate.keyId, serial, principals: [...principals], principal, caFingerprint: ca.fingerprint },
    forcedCommand: certificate.forceCommand,
    permits: { pty: certificate.permitPty, portForwarding: certificate.permitPortForwarding },
  });
  return { ok: true, identity };
}

function normalizeSerial(serial: string): string {
  return /^\d+$/.test(serial) ? BigInt(serial).toString() : serial;
}

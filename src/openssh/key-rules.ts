/**
 * Which user and CA keys are strong enough, following OpenSSH 9.x/10.x: no DSA (7.0 stopped
 * accepting it by default, 9.8 removed it), and RSA of at least 2048 bits. OpenSSH's
 * RequiredRSASize default is 1024; we choose the stricter floor of every current ssh-keygen
 * default. Applied when the policy loads (so the operator reads file and line) and again at
 * login (so a key that reached us another way, e.g. inside a certificate, is still refused).
 */
import { bitLength, SshReader } from './ssh-wire.ts';

/** RSA moduli below this many bits are refused: user keys, certified keys and CA keys. */
export const MIN_RSA_BITS = 2048;

/** Why this public key blob (SSH wire format) is too weak to log in with, or null. */
export function weakKeyProblem(blob: Buffer): string | null {
  try {
    const r = new SshReader(blob, 'public key');
    const type = r.text('key type');
    if (type === 'ssh-dss') return 'DSA keys are refused (OpenSSH no longer accepts them): use an ed25519 key (ssh-keygen -t ed25519)';
    if (type !== 'ssh-rsa') return null;
    r.mpint('rsa exponent');
    const bits = bitLength(r.mpint('rsa modulus'));
    return bits < MIN_RSA_BITS ? `RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required: use ed25519 (ssh-keygen -t ed25519) or RSA of 3072 bits` : null;
  } catch {
    return null; // unreadable blobs are the parsers' to refuse, with their own reason
  }
}

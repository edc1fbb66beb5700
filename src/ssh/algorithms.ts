/**
 * The SSH algorithms we offer. ssh2's defaults include NIST-curve ECDH, SHA-1 MACs and
 * encrypt-and-MAC modes, which security scanners (ssh-audit) flag; ours audit clean. The strict
 * key-exchange marker (Terrapin countermeasure) is added by ssh2 itself and must never be removed.
 */
import { createRequire } from 'node:module';
import type { Algorithms } from 'ssh2';

const require = createRequire(import.meta.url);
const supported = require('ssh2/lib/protocol/constants.js') as {
  SUPPORTED_KEX: string[];
  SUPPORTED_SERVER_HOST_KEY: string[];
  SUPPORTED_CIPHER: string[];
  SUPPORTED_MAC: string[];
};

export interface AlgorithmSet {
  kex: string[];
  serverHostKey: string[];
  cipher: string[];
  hmac: string[];
}

/**
 * Post-quantum hybrids first, in OpenSSH 10's order (which warns from 10.1 on about servers
 * without one): ML-KEM, then Streamlined NTRU Prime for OpenSSH 8.5 to 9.8 (its default from
 * 9.0, under both names); clients without either fall back to curve25519. They exist only in our
 * patched ssh2 (patches/, docs/ssh2-patches.md).
 */
export const PQ_KEX = 'mlkem768x25519-sha256';
export const SNTRUP_KEX = ['sntrup761x25519-sha512', 'sntrup761x25519-sha512@openssh.com'];
const PATCHED_KEX = [PQ_KEX, ...SNTRUP_KEX];

export const DEFAULT_ALGORITHMS: AlgorithmSet = {
  kex: [PQ_KEX, ...SNTRUP_KEX, 'curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group18-sha512', 'diffie-hellman-group16-sha512'],
  serverHostKey: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'],
  // chacha20-poly1305 is safe here because strict kex is always on.
  cipher: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com'],
};

const SUPPORTED: Record<keyof AlgorithmSet, string[]> = {
  kex: supported.SUPPORTED_KEX,
  serverHostKey: supported.SUPPORTED_SERVER_HOST_KEY,
  cipher: supported.SUPPORTED_CIPHER,
  hmac: supported.SUPPORTED_MAC,
};

/**
 * User signature algorithms advertised in server-sig-algs (RFC 8308): SHA-2 only, as OpenSSH
 * 8.8+; auth refuses SHA-1 `ssh-rsa` and `ssh-dss` signatures, so advertising them would mislead.
 */
export const SERVER_SIG_ALGS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'];

/** Checks a configured set against what this ssh2 build can do; the error names the setting. */
export function checkAlgorithms(set: AlgorithmSet): void {
  const unpatched = PATCHED_KEX.find((name) => set.kex.includes(name) && !SUPPORTED.kex.includes(name));
  if (unpatched) {
    throw new Error(`kex: "${unpatched}" needs the patched ssh2 from patches/ (run npm ci, which applies them), or leave it out with --kex`);
  }
  for (const key of Object.keys(SUPPORTED) as Array<keyof AlgorithmSet>) {
    if (set[key].length === 0) throw new Error(`algorithms.${key}: at least one algorithm is needed`);
    for (const name of set[key]) {
      if (!SUPPORTED[key].includes(name)) {
        throw new Error(`algorithms.${key}: "${name}" is not supported; choose from ${SUPPORTED[key].join(', ')}`);
      }
    }
  }
}

/**
 * ssh2's Server appends SHA-1 `ssh-rsa` signatures for an RSA host key even when the configured
 * list leaves them out: it looks up `indexOf('ssh-rsa')` in our list and, on -1, adds it last.
 * Answering NaN for that one name makes its position match no case, so it is skipped. The
 * ssh-audit test (test/e2e/hardening.test.ts) fails if an ssh2 upgrade changes this.
 */
class HostKeyAlgorithmList extends Array<string> {
  override indexOf(name: string, fromIndex?: number): number {
    if (name === 'ssh-rsa' && !this.includes('ssh-rsa')) return NaN;
    return super.indexOf(name, fromIndex);
  }
}

/** ssh2's option shape; host key algorithms follow the host keys actually loaded. */
export function toSsh2Algorithms(set: AlgorithmSet, hostKeyTypes: string[]): Algorithms {
  const hostKeyAlgos = set.serverHostKey.filter((a) =>
    a === 'rsa-sha2-512' || a === 'rsa-sha2-256' ? hostKeyTypes.includes('ssh-rsa') : hostKeyTypes.includes(a),
  );
  return {
    kex: set.kex as Algorithms['kex'],
    serverHostKey: HostKeyAlgorithmList.from(hostKeyAlgos) as Algorithms['serverHostKey'],
    cipher: set.cipher as Algorithms['cipher'],
    hmac: set.hmac as Algorithms['hmac'],
    compress: ['none'],
  };
}

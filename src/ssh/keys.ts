/**
 * The bridge's host keys: generated on first start, permission-checked, loaded. (Public keys
 * and fingerprints in general are src/openssh/public-key.ts's.)
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fingerprint, parsePublicKey } from '../openssh/public-key.ts';
import { sshString, sshUint32 } from '../openssh/ssh-wire.ts';


/** The PEM armor label of OpenSSH private keys (kept apart so no source line reads like a key). */
const OPENSSH_ARMOR = ['OPENSSH', 'PRIVATE', 'KEY'].join(' ');

export interface GeneratedKeyPair {
  /** OpenSSH private key file contents. */
  private: string;
  /** `type base64 comment` public key line. */
  public: string;
}

/**
 * A new host key pair. Made with node:crypto and written in the OpenSSH key format
 * (PROTOCOL.key) here, because ssh2's generateKeyPairSync('ed25519') emits a key its own parser
 * rejects about once in 300 calls: a first start must never fail at random.
 */
export function generateHostKeyPair(type: HostKeyType, bits: number, comment: string): GeneratedKeyPair {
  if (type === 'rsa') {
    // PKCS#1 PEM: read by ssh2 and OpenSSH alike.
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const parsed = parsePublicKey(privateKey);
    if (!parsed) throw new Error('generated RSA key cannot be read back');
    return { private: privateKey, public: `ssh-rsa ${parsed.getPublicSSH().toString('base64')} ${comment}` };
  }
  // Encoded by the key generation itself, never by exporting the returned KeyObject: on Node 20,
  // exporting a freshly generated key can deadlock the process for good when a garbage collection
  // runs inside the export and frees the finished generation job, whose destructor takes the
  // key's lock the export already holds (a futex wait seen as a test file stuck at start, issue 16).
  const der = crypto.generateKeyPairSync('ed25519', { privateKeyEncoding: { type: 'pkcs8', format: 'der' }, publicKeyEncoding: { type: 'spki', format: 'der' } });
  // Both DER forms of an Ed25519 key end with the raw 32 bytes (RFC 8410): the seed, the point.
  const seed = der.privateKey.subarray(-32);
  const pub = der.publicKey.subarray(-32);
  const publicBlob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = crypto.randomBytes(4);
  let secret = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // Pad to the cipher block size (8 for "none") with 1, 2, 3, ... as the format requires.
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    sshUint32(1),
    sshString(publicBlob),
    sshString(secret),
  ]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return {
    private: `-----BEGIN ${OPENSSH_ARMOR}-----\n${b64}-----END ${OPENSSH_ARMOR}-----\n`,
    public: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
  };
}

export interface HostKey {
  file: string;
  pem: Buffer;
  type: string;
  fingerprint: string;
  generated: boolean;
}

export type HostKeyType = 'ed25519' | 'rsa';

/** RSA host keys below this size are refused (NIST and OpenSSH guidance for new keys). */
export const MIN_RSA_BITS = 3072;
/** Above this, generation takes minutes and nothing gains (OpenSSH's own ssh-keygen limit). */
export const MAX_RSA_BITS = 16384;

/** Why a key of this type and size will not be made, as one line, or null. Checked before anything
 *  is written, so a refused request leaves no file behind. */
export function keygenProblem(type: HostKeyType, bits: number): string | null {
  if (type !== 'rsa') return null;
  if (!Number.isInteger(bits)) return `--bits must be a whole number of bits (RSA: ${MIN_RSA_BITS} to ${MAX_RSA_BITS})`;
  if (bits < MIN_RSA_BITS) return `--bits ${bits}: RSA host keys need at least ${MIN_RSA_BITS} bits (the bridge refuses smaller ones); try --bits ${MIN_RSA_BITS} or --type ed25519`;
  if (bits > MAX_RSA_BITS) return `--bits ${bits}: at most ${MAX_RSA_BITS} bits`;
  return null;
}

/**
 * Loads a host key, generating one (ed25519 unless asked otherwise, mode 0600) if the file does not
 * exist yet, so the first start works and every later start presents the same key. A key readable
 * by group or others is refused, as sshd refuses it: anyone who reads it can impersonate the bridge.
 */
export function loadOrCreateHostKey(file: string, type: HostKeyType = 'ed25519', bits = MIN_RSA_BITS): HostKey {
  let generated = false;
  if (!fs.existsSync(file)) {
    const problem = keygenProblem(type, bits);
    if (problem !== null) throw new Error(problem);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const pair = generateHostKeyPair(type, bits, 'podbridge host key');
    fs.writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
    fs.writeFileSync(`${file}.pub`, `${pair.public}\n`, { mode: 0o644 });
    generated = true;
  }
  return loadHostKeyFile(file, generated);
}

/**
 * Host keys from files or directories. A directory (such as a Kubernetes Secret mount) contributes
 * every private key in it; an empty or missing directory gets a generated ed25519 key.
 */
export function loadHostKeys(paths: string[]): HostKey[] {
  const keys: HostKey[] = [];
  for (const p of paths) {
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
      const files = fs
        .readdirSync(p)
        .filter((name) => !name.startsWith('.') && !name.endsWith('.pub') && name !== 'README.md')
        .map((name) => path.join(p, name))
        .filter((f) => fs.statSync(f).isFile());
      if (files.length === 0) keys.push(loadOrCreateHostKey(path.join(p, 'ssh_host_ed25519_key')));
      else for (const f of files.sort()) keys.push(loadHostKeyFile(f, false));
    } else {
      keys.push(loadOrCreateHostKey(p));
    }
  }
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k.type)) throw new Error(`two ${k.type} host keys (${k.file}); SSH offers one key per type: remove one`);
    seen.add(k.type);
  }
  return keys;
}

/**
 * Who may read a host key, as sshd's rule plus one case a Kubernetes Secret needs. Accepted: mode
 * 0600/0400 (only the owner), or 0440/0640-style group-readable when the owner is root or this
 * process's user AND the group is one this process belongs to (its gid or a supplementary group:
 * the pod's fsGroup, which the kubelet gives a Secret volume's files). Never: bits for others,
 * group write, or a group the process is not in (then other people could read it).
 */
export function permissionProblem(st: fs.Stats): string | null {
  const mode = st.mode & 0o777;
  const shown = `(mode ${mode.toString(8).padStart(4, '0')}, owner ${st.uid}, group ${st.gid})`;
  const fix = 'run: chmod 600 FILE, or in Kubernetes mount the Secret with defaultMode: 0440 and the pod\'s securityContext.fsGroup';
  if ((mode & 0o007) !== 0) return `is readable by other users ${shown}; ${fix}`;
  if ((mode & 0o070) === 0) return null;
  if ((mode & 0o030) !== 0) return `is writable or executable by its group ${shown}; ${fix}`;
  const uid = process.getuid?.() ?? -1;
  const groups = new Set([process.getgid?.() ?? -1, ...(process.getgroups?.() ?? [])]);
  if (st.uid !== 0 && st.uid !== uid) return `is group-readable and owned by another user ${shown}; ${fix}`;
  if (!groups.has(st.gid)) return `is readable by group ${st.gid}, which this process (uid ${uid}) is not in ${shown}; ${fix}`;
  return null;
}

function loadHostKeyFile(file: string, generated: boolean): HostKey {
  const st = fs.statSync(file);
  if (!st.isFile()) throw new Error(`host key ${file} is not a regular file`);
  const problem = permissionProblem(st);
  if (problem !== null) throw new Error(`host key ${file} ${problem}`);
  let pem: Buffer;
  try {
    pem = fs.readFileSync(file);
  } catch (err) {
    // The usual case: a Secret mounted 0400 is root's alone, and the bridge does not run as root.
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new Error(
      `host key ${file} cannot be read by this process (uid ${process.getuid?.() ?? '?'}; mode ${mode}, owner ${st.uid}, group ${st.gid}); in Kubernetes mount the Secret with defaultMode: 0440 and the pod's securityContext.fsGroup`,
    );
  }
  const key = parsePublicKey(pem);
  if (!key || !key.isPrivateKey()) {
    throw new Error(`host key ${file} is not an unencrypted OpenSSH/PEM private key; generate one with: podbridge keygen ${file}`);
  }
  if (key.type === 'ssh-rsa') {
    const details = crypto.createPublicKey(key.getPublicPEM()).asymmetricKeyDetails;
    const bits = details?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new Error(`host key ${file} is RSA with ${bits} bits; use at least ${MIN_RSA_BITS} (podbridge keygen --type rsa)`);
  } else if (key.type !== 'ssh-ed25519') {
    throw new Error(`host key ${file} is ${key.type}; use ed25519 (default) or RSA with ${MIN_RSA_BITS}+ bits`);
  }
  return { file, pem, type: key.type, fingerprint: fingerprint(key.getPublicSSH()), generated };
}

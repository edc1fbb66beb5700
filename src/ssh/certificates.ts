/**
 * OpenSSH user certificates (PROTOCOL.certkeys), which ssh2 does not understand: it hands us the
 * certificate blob whole in ctx.key.data and the user's signature still in its wire wrapper.
 * This module parses certificates, decides whether one admits a login the way sshd does
 * (auth2-pubkey.c, auth-options.c, sshkey.c, addrmatch.c), and checks the user's proof of
 * possession against the certified key. All cryptography is node:crypto; nothing here trusts a
 * field of the certificate before the CA signature over it has been verified.
 */
import crypto, { type KeyObject } from 'node:crypto';
import { addressAllowed, parseAddressPatterns } from '../policy/address.ts';
import type { Permits } from '../policy/identities.ts';
import type { CertificateAuthority } from '../policy/types.ts';
import { fingerprint } from '../openssh/public-key.ts';
import { MIN_RSA_BITS } from '../openssh/key-rules.ts';
import { bitLength, SshReader, SshWireError, sshString, unsignedMpint } from '../openssh/ssh-wire.ts';

export interface Certificate {
  /** Key type from the blob, e.g. ssh-ed25519-cert-v01@openssh.com (never an rsa-sha2-* alias). */
  algo: string;
  nonce: Buffer;
  /** The certified key as a plain public key blob (ssh-ed25519 ...), usable with ssh2's parseKey. */
  publicKeyBlob: Buffer;
  serial: bigint;
  type: 'user' | 'host';
  keyId: string;
  principals: string[];
  /** Seconds since the epoch; 0 means "always". */
  validAfter: bigint;
  /** Seconds since the epoch; 2^64-1 means "forever". */
  validBefore: bigint;
  /**
   * Option name to value. force-command and source-address hold their command / address list.
   * Other options hold their data decoded as one SSH string when it is one (that is how
   * ssh-keygen -O critical:name=value writes it), '' when empty, and lowercase hex otherwise.
   */
  criticalOptions: Map<string, string>;
  /** Same encoding as criticalOptions; the permit-* flags always hold ''. */
  extensions: Map<string, string>;
  /** The CA's public key blob. */
  signatureKeyBlob: Buffer;
  /** The bytes the CA signed: everything from the key type up to and including the CA key. */
  signedPart: Buffer;
  /** The CA's signature in wire format: string algorithm, string signature. */
  signature: Buffer;
}

export class CertificateError extends Error {
  override name = 'CertificateError';
}

export interface CheckOptions {
  /** The trusted CAs (the policy's; only their keys matter here). */
  authorities: ReadonlyArray<Pick<CertificateAuthority, 'blob' | 'fingerprint'>>;
  now: Date;
  /** The client's IP address as the socket reports it (IPv4-mapped IPv6 is treated as IPv4). */
  sourceAddress: string;
  /** Required principal, if the caller maps principals; the certificate must list it exactly. */
  principal?: string;
  /**
   * The public key algorithm the client named in its request (ssh2's ctx.key.algo). When given it
   * must fit the certificate, as sshd requires: rsa-sha2-256/512-cert-v01 for an RSA certificate
   * (ssh-rsa-cert-v01 would allow SHA-1 signatures), otherwise exactly the certificate's type.
   */
  keyAlgo?: string;
}

/** The certificate's permit-* extensions: the policy's Permits (what a credential allows) and
 *  the ones the bridge refuses anyway but reports. */
export interface CertificatePermits extends Permits {
  pty: boolean;
  portForwarding: boolean;
  agentForwarding: boolean;
  x11Forwarding: boolean;
  userRc: boolean;
}

export type CheckResult =
  | { ok: true; cert: Certificate; forceCommand: string | null; permits: CertificatePermits }
  | { ok: false; reason: string };

// ---------------------------------------------------------------------------------------------
// Key types

type KeyKind = 'ed25519' | 'ecdsa' | 'rsa' | 'dss' | 'sk-ed25519' | 'sk-ecdsa';

interface CertType {
  plain: string;
  kind: KeyKind;
  curve?: Curve;
}

type Curve = 'nistp256' | 'nistp384' | 'nistp521';

const CURVES: Record<Curve, { jwk: string; size: number; hash: string }> = {
  nistp256: { jwk: 'P-256', size: 32, hash: 'sha256' },
  nistp384: { jwk: 'P-384', size: 48, hash: 'sha384' },
  nistp521: { jwk: 'P-521', size: 66, hash: 'sha512' },
};

const CERT_TYPES = new Map<string, CertType>([
  ['ssh-ed25519-cert-v01@openssh.com', { plain: 'ssh-ed25519', kind: 'ed25519' }],
  ['ecdsa-sha2-nistp256-cert-v01@openssh.com', { plain: 'ecdsa-sha2-nistp256', kind: 'ecdsa', curve: 'nistp256' }],
  ['ecdsa-sha2-nistp384-cert-v01@openssh.com', { plain: 'ecdsa-sha2-nistp384', kind: 'ecdsa', curve: 'nistp384' }],
  ['ecdsa-sha2-nistp521-cert-v01@openssh.com', { plain: 'ecdsa-sha2-nistp521', kind: 'ecdsa', curve: 'nistp521' }],
  ['ssh-rsa-cert-v01@openssh.com', { plain: 'ssh-rsa', kind: 'rsa' }],
  ['ssh-dss-cert-v01@openssh.com', { plain: 'ssh-dss', kind: 'dss' }],
  ['sk-ssh-ed25519-cert-v01@openssh.com', { plain: 'sk-ssh-ed25519@openssh.com', kind: 'sk-ed25519' }],
  ['sk-ecdsa-sha2-nistp256-cert-v01@openssh.com', { plain: 'sk-ecdsa-sha2-nistp256@openssh.com', kind: 'sk-ecdsa', curve: 'nistp256' }],
]);

/**
 * Names that only appear as the algorithm of a publickey request (PROTOCOL.certkeys): they carry
 * an ssh-rsa-cert-v01 blob and announce the SHA-2 signature that follows.
 */
const RSA_CERT_SIG_ALIASES = new Map<string, string>([
  ['rsa-sha2-256-cert-v01@openssh.com', 'rsa-sha2-256'],
  ['rsa-sha2-512-cert-v01@openssh.com', 'rsa-sha2-512'],
]);

/** True for every certificate key type and for the rsa-sha2-*-cert-v01 request aliases. */
export function isCertificateAlgo(algo: string): boolean {
  return CERT_TYPES.has(algo) || RSA_CERT_SIG_ALIASES.has(algo);
}

/** Stricter than OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE (1024): see key-rules.ts. */
const RSA_MIN_BITS = MIN_RSA_BITS;
/** OpenSSH refuses certificates with more principals (SSHKEY_CERT_MAX_PRINCIPALS). */
const MAX_PRINCIPALS = 256;
const SSH_CERT_TYPE_USER = 1;
const SSH_CERT_TYPE_HOST = 2;
const SSH_MSG_USERAUTH_REQUEST = 50;

// ---------------------------------------------------------------------------------------------
// Parsing

/** Critical options whose data is one string, which sshd reads and refuses if anything follows. */
const STRING_CRITICAL_OPTIONS = new Set(['force-command', 'source-address']);
/** Extensions sshd knows; it refuses the certificate if one carries data. */
const FLAG_EXTENSIONS = new Set(['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc']);

export function parseCertificate(blob: Buffer): Certificate {
  try {
    if (!Buffer.isBuffer(blob)) throw new CertificateError('certificate: not a Buffer');
    return parse(Buffer.from(blob));
  } catch (err) {
    // The contract is "CertificateError or a certificate": wire errors become CertificateError,
    // and anything unexpected (a bug here) too, so a caller never crashes on hostile input.
    if (err instanceof CertificateError) throw err;
    if (err instanceof SshWireError) throw new CertificateError(err.message);
    throw new CertificateError(`certificate: unparseable (${err instanceof Error ? err.message : String(err)})`);
  }
}

/** `buf` is our own copy, so the Buffers in the result are views nobody else can change. */
function parse(buf: Buffer): Certificate {
  const r: SshReader = new SshReader(buf, 'certificate');
  const algo = r.text('key type');
  const type = CERT_TYPES.get(algo);
  if (!type) {
    if (RSA_CERT_SIG_ALIASES.has(algo)) r.fail(`"${algo}" is a signature algorithm name, not a key type; the blob must say ssh-rsa-cert-v01@openssh.com`);
    r.fail(`"${printable(algo)}" is not a certificate key type`);
  }
  const nonce = r.string('nonce');

  const keyStart = r.offset;
  readCertifiedKey(r, type);
  const publicKeyBlob = Buffer.concat([sshString(type.plain), r.slice(keyStart)]);

  const serial = r.uint64('serial');
  const rawType = r.uint32('certificate type');
  if (rawType !== SSH_CERT_TYPE_USER && rawType !== SSH_CERT_TYPE_HOST) r.fail(`unknown certificate type ${rawType}`);
  const keyId = r.text('key id');

  const principalReader: SshReader = new SshReader(r.string('valid principals'), 'certificate principals');
  const principals: string[] = [];
  while (!principalReader.atEnd()) {
    if (principals.length >= MAX_PRINCIPALS) r.fail(`more than ${MAX_PRINCIPALS} principals`);
    principals.push(principalReader.text(`principal ${principals.length + 1}`));
  }

  const validAfter = r.uint64('valid after');
  const validBefore = r.uint64('valid before');
  const criticalOptions = parseOptions(r.string('critical options'), 'critical option');
  const extensions = parseOptions(r.string('extensions'), 'extension');
  r.string('reserved');
  const signatureKeyBlob = r.string('signature key');
  const signedPart = r.slice(0, r.offset);
  const signature = r.string('signature');
  r.expectEnd('the signature');

  // The signature's own layout is checked here so that a malformed one is reported as such
  // rather than as a failed verification.
  const sr: SshReader = new SshReader(signature, 'certificate signature');
  sr.text('algorithm');
  sr.string('signature blob');
  sr.expectEnd('the signature blob');

  return {
    algo,
    nonce,
    publicKeyBlob,
    serial,
    type: rawType === SSH_CERT_TYPE_USER ? 'user' : 'host',
    keyId,
    principals,
    validAfter,
    validBefore,
    criticalOptions,
    extensions,
    signatureKeyBlob,
    signedPart,
    signature,
  };
}

/** Reads the certified key's fields (after the nonce), checking their shape as sshkey.c does. */
function readCertifiedKey(r: SshReader, type: CertType): void {
  switch (type.kind) {
    case 'ed25519':
    case 'sk-ed25519': {
      const pk = r.string('ed25519 public key');
      if (pk.length !== 32) r.fail(`ed25519 public key is ${pk.length} bytes, not 32`);
      break;
    }
    case 'ecdsa':
    case 'sk-ecdsa': {
      const curve = r.text('curve name');
      if (curve !== type.curve) r.fail(`curve "${printable(curve)}" does not match key type ${type.plain}`);
      checkEcPoint(r.string('ecdsa public point'), type.curve, (m) => r.fail(m));
      break;
    }
    case 'rsa': {
      r.mpint('rsa exponent');
      const n = r.mpint('rsa modulus');
      if (bitLength(n) < RSA_MIN_BITS) r.fail(`certified RSA key is ${bitLength(n)} bits; at least ${RSA_MIN_BITS} are required`);
      break;
    }
    case 'dss':
      for (const f of ['p', 'q', 'g', 'y']) r.mpint(`dsa ${f}`);
      break;
  }
  if (type.kind === 'sk-ed25519' || type.kind === 'sk-ecdsa') r.text('security key application');
}

function checkEcPoint(q: Buffer, curve: Curve, fail: (m: string) => never): void {
  const size = CURVES[curve].size;
  // OpenSSH only ever writes uncompressed points; a compressed one is not a valid key there.
  if (q.length !== 1 + 2 * size || q[0] !== 0x04) fail(`ecdsa public point is not an uncompressed ${curve} point`);
}

function parseOptions(data: Buffer, kind: 'critical option' | 'extension'): Map<string, string> {
  const r: SshReader = new SshReader(data, `certificate ${kind}s`);
  const out = new Map<string, string>();
  while (!r.atEnd()) {
    const name = r.text(`${kind} name`);
    const value = r.string(`${kind} "${printable(name)}" data`);
    // PROTOCOL.certkeys allows each name once; a Map could not represent a repeat, and sshd
    // refuses repeated force-command / source-address.
    if (out.has(name)) r.fail(`${kind} "${printable(name)}" appears twice`);
    if (kind === 'critical option' && STRING_CRITICAL_OPTIONS.has(name)) {
      const vr: SshReader = new SshReader(value, `certificate critical option "${name}"`);
      out.set(name, vr.text('value'));
      vr.expectEnd('the value');
    } else if (kind === 'extension' && FLAG_EXTENSIONS.has(name)) {
      if (value.length !== 0) r.fail(`extension "${name}" carries ${value.length} bytes of data; it must be empty`);
      out.set(name, '');
    } else {
      out.set(name, decodeOpaque(value));
    }
  }
  return out;
}

function decodeOpaque(value: Buffer): string {
  if (value.length === 0) return '';
  try {
    const vr: SshReader = new SshReader(value, 'option');
    const s = vr.text('value');
    if (vr.atEnd()) return s;
  } catch {
    // not one string: fall through to hex
  }
  return value.toString('hex');
}

// ---------------------------------------------------------------------------------------------
// Public keys and signatures

type VerifyKey =
  | { kind: 'ed25519'; key: KeyObject }
  | { kind: 'ecdsa'; name: string; curve: Curve; key: KeyObject }
  | { kind: 'rsa'; key: KeyObject; modulusBytes: number };

/** Parses a plain ed25519 / ecdsa / rsa public key blob into a node:crypto key. Throws CertificateError. */
function loadPublicKey(blob: Buffer, what: string): VerifyKey {
  try {
    const r: SshReader = new SshReader(blob, what);
    const type = r.text('key type');
    let result: VerifyKey;
    if (type === 'ssh-ed25519') {
      const pk = r.string('ed25519 public key');
      if (pk.length !== 32) r.fail(`ed25519 public key is ${pk.length} bytes, not 32`);
      result = { kind: 'ed25519', key: crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: pk.toString('base64url') }, format: 'jwk' }) };
    } else if (type.startsWith('ecdsa-sha2-') && type.slice(11) in CURVES) {
      const curve = type.slice(11) as Curve;
      const name = r.text('curve name');
      if (name !== curve) r.fail(`curve "${printable(name)}" does not match key type ${type}`);
      const q = r.string('ecdsa public point');
      checkEcPoint(q, curve, (m) => r.fail(m));
      const size = CURVES[curve].size;
      const jwk = { kty: 'EC', crv: CURVES[curve].jwk, x: q.subarray(1, 1 + size).toString('base64url'), y: q.subarray(1 + size).toString('base64url') };
      // createPublicKey refuses points that are not on the curve.
      result = { kind: 'ecdsa', name: type, curve, key: crypto.createPublicKey({ key: jwk, format: 'jwk' }) };
    } else if (type === 'ssh-rsa') {
      const e = r.mpint('rsa exponent');
      const n = r.mpint('rsa modulus');
      const bits = bitLength(n);
      if (bits < RSA_MIN_BITS) r.fail(`RSA key is ${bits} bits; at least ${RSA_MIN_BITS} are required`);
      const key = crypto.createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') }, format: 'jwk' });
      result = { kind: 'rsa', key, modulusBytes: Math.ceil(bits / 8) };
    } else if (type.endsWith('-cert-v01@openssh.com')) {
      r.fail(`key is itself a certificate (${printable(type)})`);
    } else {
      r.fail(`key type "${printable(type)}" is not supported (ed25519, ecdsa-sha2-nistp256/384/521 and rsa are)`);
    }
    r.expectEnd('the key');
    return result;
  } catch (err) {
    if (err instanceof CertificateError) throw err;
    if (err instanceof SshWireError) throw new CertificateError(err.message);
    throw new CertificateError(`${what}: unusable (${err instanceof Error ? err.message : String(err)})`);
  }
}

type SigCheck = { ok: true; algo: string; hash: string | null } | { ok: false; reason: string };

/**
 * Verifies a wire-format signature (string algorithm, string blob) over `data` with `key`.
 * `allowedAlgos`, when given, is the exact set of signature algorithms acceptable here.
 * ssh-rsa (SHA-1) is never accepted: modern sshd refuses it for CA and user signatures alike.
 */
function verifyWireSignature(key: VerifyKey, data: Buffer, wire: Buffer, allowedAlgos?: ReadonlySet<string>): SigCheck {
  let algo: string;
  let sig: Buffer;
  try {
    const r: SshReader = new SshReader(wire, 'signature');
    algo = r.text('algorithm');
    sig = r.string('signature blob');
    r.expectEnd('the signature blob');
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
  if (allowedAlgos && !allowedAlgos.has(algo)) return { ok: false, reason: `signature algorithm ${printable(algo)} is not acceptable here` };
  try {
    switch (key.kind) {
      case 'ed25519':
        if (algo !== 'ssh-ed25519') return { ok: false, reason: `signature algorithm ${printable(algo)} does not fit an ed25519 key` };
        if (sig.length !== 64) return { ok: false, reason: `ed25519 signature is ${sig.length} bytes, not 64` };
        return crypto.verify(null, data, key.key, sig) ? { ok: true, algo, hash: null } : { ok: false, reason: 'signature does not verify' };
      case 'ecdsa': {
        if (algo !== key.name) return { ok: false, reason: `signature algorithm ${printable(algo)} does not fit an ${key.name} key` };
        const p1363 = ecdsaWireToP1363(sig, key.curve);
        if (!p1363) return { ok: false, reason: 'ecdsa signature is malformed' };
        const hash = CURVES[key.curve].hash;
        return crypto.verify(hash, data, { key: key.key, dsaEncoding: 'ieee-p1363' }, p1363)
          ? { ok: true, algo, hash }
          : { ok: false, reason: 'signature does not verify' };
      }
      case 'rsa': {
        const hash = algo === 'rsa-sha2-256' ? 'sha256' : algo === 'rsa-sha2-512' ? 'sha512' : null;
        if (algo === 'ssh-rsa') return { ok: false, reason: 'signature uses ssh-rsa (SHA-1), which is refused' };
        if (!hash) return { ok: false, reason: `signature algorithm ${printable(algo)} does not fit an RSA key` };
        // Like OpenSSH, accept a signature shorter than the modulus by left-padding it with zeros.
        if (sig.length > key.modulusBytes) return { ok: false, reason: 'RSA signature is longer than the modulus' };
        const padded = sig.length === key.modulusBytes ? sig : Buffer.concat([Buffer.alloc(key.modulusBytes - sig.length), sig]);
        return crypto.verify(hash, data, { key: key.key, padding: crypto.constants.RSA_PKCS1_PADDING }, padded)
          ? { ok: true, algo, hash }
          : { ok: false, reason: 'signature does not verify' };
      }
    }
  } catch (err) {
    return { ok: false, reason: `signature check failed (${err instanceof Error ? err.message : String(err)})` };
  }
}

/** SSH ecdsa signature blob (mpint r, mpint s) to fixed-width r||s, or null if malformed. */
function ecdsaWireToP1363(sig: Buffer, curve: Curve): Buffer | null {
  const size = CURVES[curve].size;
  try {
    const r: SshReader = new SshReader(sig, 'ecdsa signature');
    const fail = (m: string): never => r.fail(m);
    const rv = unsignedMpint(r.string('r'), 'r', size * 8, fail);
    const sv = unsignedMpint(r.string('s'), 's', size * 8, fail);
    r.expectEnd('s');
    const out = Buffer.alloc(2 * size);
    rv.copy(out, size - rv.length);
    sv.copy(out, 2 * size - sv.length);
    return out;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Authorisation

const ALWAYS = 0n;
const FOREVER = 0xffffffffffffffffn;

/** What sshd would decide for this certificate; reasons are for the log, never for the client. */
export function checkCertificate(cert: Certificate, opts: CheckOptions): CheckResult {
  try {
    return check(cert, opts);
  } catch (err) {
    // Defensive: a Certificate built by hand (not by parseCertificate) could be inconsistent.
    return { ok: false, reason: `certificate check failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

function check(cert: Certificate, opts: CheckOptions): CheckResult {
  const refuse = (reason: string): CheckResult => ({ ok: false, reason });
  const type = CERT_TYPES.get(cert.algo);
  if (!type) return refuse(`unsupported certificate type ${printable(cert.algo)}`);
  if (opts.keyAlgo !== undefined) {
    const why = keyAlgoMismatch(opts.keyAlgo, cert);
    if (why) return refuse(why);
  }

  // The CA first: nothing else in the certificate means anything until its signature is known
  // to come from a CA we trust, and logging "expired" for a forgery would mislead.
  let ca: VerifyKey;
  try {
    ca = loadPublicKey(cert.signatureKeyBlob, 'certificate CA key');
  } catch (err) {
    return refuse((err as Error).message);
  }
  const authority = opts.authorities.find((a) => a.blob.equals(cert.signatureKeyBlob));
  if (!authority) return refuse(`certificate signed by untrusted CA ${fingerprint(cert.signatureKeyBlob)}`);
  const sig = verifyWireSignature(ca, cert.signedPart, cert.signature);
  if (!sig.ok) return refuse(`certificate CA signature invalid (CA ${authority.fingerprint}): ${sig.reason}`);

  const id = `certificate "${printable(cert.keyId)}" serial ${cert.serial}`;
  if (cert.type !== 'user') return refuse(`${id} is a host certificate, not a user certificate`);

  // The certified key must be one we can check the user's signature with.
  if (type.kind !== 'ed25519' && type.kind !== 'ecdsa' && type.kind !== 'rsa') {
    return refuse(`${id}: certified key type ${type.plain} is not supported`);
  }


  const nowMs = opts.now.getTime();
  if (!Number.isFinite(nowMs)) return refuse('no valid current time to check the certificate against');
  const now = BigInt(Math.floor(nowMs / 1000));
  if (now < cert.validAfter) return refuse(`${id} is not yet valid: valid from ${formatTime(cert.validAfter)}`);
  if (now >= cert.validBefore) return refuse(`${id} expired at ${formatTime(cert.validBefore)}`);

  // An empty list once meant "any principal"; OpenSSH now refuses it, and so do we.
  if (cert.principals.length === 0) return refuse(`${id} has no principals`);
  if (opts.principal !== undefined && !cert.principals.includes(opts.principal)) {
    return refuse(`principal "${printable(opts.principal)}" not in certificate principals [${cert.principals.map(printable).join(', ')}]`);
  }

  // Critical options: an option we do not understand restricts in a way we cannot honour.
  let forceCommand: string | null = null;
  for (const [name, value] of cert.criticalOptions) {
    if (name === 'force-command') forceCommand = value;
    else if (name !== 'source-address') return refuse(`${id} has unsupported critical option "${printable(name)}"`);
  }
  const sourceList = cert.criticalOptions.get('source-address');
  if (sourceList !== undefined) {
    const m = matchCidrList(opts.sourceAddress, sourceList);
    if (m === 'invalid') return refuse(`${id} has an invalid source-address "${printable(sourceList)}"`);
    if (m === 'no-match') return refuse(`source address ${printable(opts.sourceAddress)} not in certificate source-address [${printable(sourceList)}]`);
  }

  return {
    ok: true,
    cert,
    forceCommand,
    permits: {
      pty: cert.extensions.has('permit-pty'),
      portForwarding: cert.extensions.has('permit-port-forwarding'),
      agentForwarding: cert.extensions.has('permit-agent-forwarding'),
      x11Forwarding: cert.extensions.has('permit-X11-forwarding'),
      userRc: cert.extensions.has('permit-user-rc'),
    },
  };
}

/** null if the request algorithm fits the certificate, else why not. */
function keyAlgoMismatch(keyAlgo: string, cert: Certificate): string | null {
  if (cert.algo === 'ssh-rsa-cert-v01@openssh.com') {
    if (RSA_CERT_SIG_ALIASES.has(keyAlgo)) return null;
    if (keyAlgo === cert.algo) return `key algorithm ${keyAlgo} (SHA-1 signatures) is refused; rsa-sha2-256/512-cert-v01@openssh.com are accepted`;
  } else if (keyAlgo === cert.algo) {
    return null;
  }
  return `key algorithm ${printable(keyAlgo)} does not match certificate type ${cert.algo}`;
}

/** The user's proof of possession: ssh2's ctx.signature/ctx.blob/ctx.hashAlgo verified against the CERTIFIED key. */
export function verifyUserSignature(cert: Certificate, blob: Buffer, signature: Buffer, hashAlgo: string | undefined): boolean {
  try {
    if (!Buffer.isBuffer(blob) || !Buffer.isBuffer(signature)) return false;
    // ctx.blob is exactly what the client signed (RFC 4252 section 7): session id, then the
    // request up to the key blob. Read it back so that the signature is tied to THIS
    // certificate and to the algorithm the client announced, as sshd ties them.
    const r: SshReader = new SshReader(blob, 'signed data');
    r.string('session id');
    if (r.byte('message number') !== SSH_MSG_USERAUTH_REQUEST) return false;
    r.string('user');
    r.string('service');
    if (r.string('method').toString('latin1') !== 'publickey') return false;
    if (!r.bool('has signature')) return false;
    const keyAlgo = r.text('key algorithm');
    const keyBlob = r.string('key blob');
    if (!r.atEnd()) return false;
    if (!keyBlob.equals(Buffer.concat([cert.signedPart, sshString(cert.signature)]))) return false;
    if (keyAlgoMismatch(keyAlgo, cert) !== null) return false;

    const type = CERT_TYPES.get(cert.algo);
    if (!type) return false;
    // The signature algorithm is the plain one (ssh-ed25519, ecdsa-sha2-nistp256, ...), never
    // the certificate name; for RSA it is the one the request algorithm announced.
    const expected = RSA_CERT_SIG_ALIASES.get(keyAlgo) ?? type.plain;
    const key = loadPublicKey(cert.publicKeyBlob, 'certified key');
    const result = verifyWireSignature(key, blob, signature, new Set([expected]));
    if (!result.ok) return false;
    // ssh2 leaves hashAlgo undefined for certificate algorithms; if a caller passes one anyway
    // it must agree with the signature rather than be silently ignored.
    if (hashAlgo !== undefined && hashAlgo !== result.hash) return false;
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// source-address: a comma-separated CIDR list, with addrmatch.c's addr_match_cidr_list rules

type CidrMatch = 'match' | 'no-match' | 'invalid';

/**
 * Every entry must be a valid address or CIDR whose host bits are zero (sshd treats any bad
 * entry as "invalid list" and refuses); an address without /len is a single host. The matching
 * itself is policy/address.ts's, the same as for `from=`, so both agree on every client address.
 */
export function matchCidrList(address: string, list: string): CidrMatch {
  // sshd's own limits on top: nothing but hex digits, dots, colons and a slash (no names,
  // wildcards, negation or zone ids), and at most INET6_ADDRSTRLEN + 3 characters an entry.
  if (list.split(',').some((entry) => entry.length > 49 || !/^[0-9a-fA-F.:/]*$/.test(entry))) return 'invalid';
  const parsed = parseAddressPatterns(list, { allowNegation: false, allowWildcards: false });
  if (!parsed.ok) return 'invalid';
  return addressAllowed(parsed.patterns, address) ? 'match' : 'no-match';
}

// ---------------------------------------------------------------------------------------------
// Formatting for log reasons

function formatTime(seconds: bigint): string {
  if (seconds === ALWAYS) return 'the beginning of time';
  if (seconds === FOREVER) return 'the end of time';
  // Date covers +-8.64e15 ms; beyond that print the raw number rather than throw.
  if (seconds <= 8_640_000_000_000n) return new Date(Number(seconds) * 1000).toISOString();
  return `${seconds} seconds after the epoch`;
}

/** Certificate text is attacker-chosen until verified: keep control characters out of logs. */
function printable(s: string): string {
  const clipped = s.length > 200 ? `${s.slice(0, 200)}…` : s;
  // eslint-disable-next-line no-control-regex
  return clipped.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

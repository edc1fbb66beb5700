/**
 * Reading and writing the SSH wire encoding (RFC 4251 section 5) for data that arrives from
 * untrusted peers: every read is bounds-checked against the buffer and fails with an SshWireError
 * that names the field, so callers can turn a malformed blob into a precise refusal reason.
 * Lengths are only ever compared with what is left, never used to allocate, so a forged length
 * cannot make us allocate or loop.
 */

export class SshWireError extends Error {
  override name = 'SshWireError';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export class SshReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    /** Prefix for error messages, e.g. "certificate". */
    private readonly what: string,
  ) {}

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  atEnd(): boolean {
    return this.pos === this.buf.length;
  }

  fail(message: string): never {
    throw new SshWireError(`${this.what}: ${message}`);
  }

  private need(n: number, field: string): void {
    if (n > this.remaining) this.fail(`truncated: ${field} needs ${n} bytes at offset ${this.pos}, ${this.remaining} left`);
  }

  byte(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }

  uint32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  uint64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** RFC 4251 boolean: any non-zero byte is true. */
  bool(field: string): boolean {
    return this.byte(field) !== 0;
  }

  /** A length-prefixed byte string. The result is a view into the input, not a copy. */
  string(field: string): Buffer {
    const len = this.uint32(`${field} length`);
    if (len > this.remaining) this.fail(`truncated: ${field} claims ${len} bytes at offset ${this.pos}, ${this.remaining} left`);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }

  /**
   * A string that must be text: valid UTF-8 without NUL. OpenSSH reads these fields as C strings
   * and refuses embedded NULs; we also refuse invalid UTF-8 so that two different byte strings
   * can never decode to the same JavaScript string (e.g. both to U+FFFD) and compare equal.
   */
  text(field: string): string {
    const raw = this.string(field);
    if (raw.includes(0)) this.fail(`${field} contains a NUL byte`);
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail(`${field} is not valid UTF-8`);
    }
  }

  /**
   * An mpint read the way OpenSSH reads public values: negative numbers are refused, leading zero
   * bytes are dropped, and the magnitude is returned as unsigned big-endian bytes.
   */
  mpint(field: string, maxBits = 16384): Buffer {
    const raw = this.string(field);
    return unsignedMpint(raw, field, maxBits, (m) => this.fail(m));
  }

  /** Raw bytes from `start` to the current position (for re-emitting a parsed field verbatim). */
  slice(start: number, end = this.pos): Buffer {
    return this.buf.subarray(start, end);
  }

  expectEnd(context: string): void {
    if (!this.atEnd()) this.fail(`${this.remaining} unexpected trailing bytes after ${context}`);
  }
}

/** Shared by SshReader.mpint and signature decoding, which gets r and s as already-read strings. */
export function unsignedMpint(raw: Buffer, field: string, maxBits: number, fail: (message: string) => never): Buffer {
  if (raw.length > 0 && (raw[0]! & 0x80) !== 0) fail(`${field} is negative`);
  let i = 0;
  while (i < raw.length && raw[i] === 0) i++;
  const mag = raw.subarray(i);
  if (bitLength(mag) > maxBits) fail(`${field} is larger than ${maxBits} bits`);
  return mag;
}

/** Bit length of an unsigned big-endian magnitude without leading zero bytes. */
export function bitLength(mag: Buffer): number {
  if (mag.length === 0) return 0;
  return (mag.length - 1) * 8 + (32 - Math.clz32(mag[0]!));
}

/** `string` encoding: uint32 length then the bytes. */
export function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

export function sshUint32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v, 0);
  return b;
}

export function sshUint64(v: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(v, 0);
  return b;
}

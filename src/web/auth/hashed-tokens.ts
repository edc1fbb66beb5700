/**
 * The one store behind the browser door's secrets (one-time login links, login cookies): each
 * token is a random 256-bit value handed out once; the store keeps only its SHA-256, so a memory
 * dump or a log of the store lets nobody in. Entries expire after the store's lifetime, and the
 * store is bounded: when full, the oldest entry is dropped (its user logs in again).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a token looks like: 32 random bytes in base64url. Anything else is not looked up. */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

interface Entry<T> {
  hash: Buffer;
  value: T;
  expires: number;
}

export class HashedTokens<T> {
  /** By hex of the hash, in insertion order (oldest first). */
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly max: number,
    readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new token standing for `value`. */
  mint(value: T): string {
    this.sweep();
    while (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    const token = randomBytes(32).toString('base64url');
    const hash = sha256(token);
    this.entries.set(hash.toString('hex'), { hash, value, expires: this.now() + this.lifetimeMs });
    return token;
  }

  /** What `token` stands for while it has not expired, else null (an expired entry is dropped). */
  find(token: string): T | null {
    return this.lookup(token, false);
  }

  /** As find(), and the token is used up: it works once. */
  take(token: string): T | null {
    return this.lookup(token, true);
  }

  delete(token: string): void {
    this.entries.delete(sha256(token).toString('hex'));
  }

  get size(): number {
    return this.entries.size;
  }

  private lookup(token: string, once: boolean): T | null {
    if (!TOKEN_SHAPE.test(token)) return null;
    const hash = sha256(token);
    const key = hash.toString('hex');
    const entry = this.entries.get(key);
    // The map lookup is by a hash of the token, which leaks nothing usable about the token
    // itself; the comparison of what was found is constant-time anyway.
    if (entry === undefined || !timingSafeEqual(entry.hash, hash)) return null;
    const expired = entry.expires <= this.now();
    if (once || expired) this.entries.delete(key);
    return expired ? null : entry.value;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.entries) if (entry.expires <= now) this.entries.delete(key);
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

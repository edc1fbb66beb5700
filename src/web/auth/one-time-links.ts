/**
 * One-time login links minted by `ssh web-login@bridge` (docs/web.md). A link carries a random
 * 256-bit token; the store keeps only its SHA-256, so a memory dump or a log of the store lets
 * nobody in. A token works once, for LINK_LIFETIME_MS, and the store is bounded: when full, the
 * oldest link is dropped (its user mints another).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Identity } from '../../policy/index.ts';

export const LINK_LIFETIME_MS = 60_000;
const MAX_LINKS = 1_000;

interface Pending {
  hash: Buffer;
  identity: Identity;
  /** Where the browser goes after the login (a login name), or null: the picker. */
  target: string | null;
  expires: number;
}

export type Redeemed = { ok: true; identity: Identity; target: string | null } | { ok: false; message: string };

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export class OneTimeLinks {
  /** By hex of the hash, in insertion order (oldest first). */
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly now: () => number = Date.now) {}

  mint(identity: Identity, target: string | null): string {
    this.sweep();
    while (this.pending.size >= MAX_LINKS) {
      const oldest = this.pending.keys().next().value;
      if (oldest === undefined) break;
      this.pending.delete(oldest);
    }
    const token = randomBytes(32).toString('base64url');
    const hash = sha256(token);
    this.pending.set(hash.toString('hex'), { hash, identity, target, expires: this.now() + LINK_LIFETIME_MS });
    return token;
  }

  redeem(token: string): Redeemed {
    const refused = { ok: false, message: 'this login link is not valid: it was used already, has expired (links last 60 s) or was mistyped; run ssh web-login@BRIDGE again' } as const;
    if (!/^[A-Za-z0-9_-]{43}$/.test(token)) return refused;
    const hash = sha256(token);
    const entry = this.pending.get(hash.toString('hex'));
    // The map lookup is by a hash of the token, which leaks nothing usable about the token
    // itself; the comparison of what was found is constant-time anyway.
    if (entry === undefined || !timingSafeEqual(entry.hash, hash)) return refused;
    this.pending.delete(hash.toString('hex'));
    if (entry.expires <= this.now()) return refused;
    return { ok: true, identity: entry.identity, target: entry.target };
  }

  get size(): number {
    return this.pending.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.pending) if (entry.expires <= now) this.pending.delete(key);
  }
}

/**
 * New-connection rate per source address, against DHEat-style floods (CVE-2002-20001): every SSH
 * connection costs the bridge a key exchange before anyone has authenticated, so one address
 * opening hundreds a second burns CPU for everyone. As OpenSSH's PerSourcePenalties, it only
 * charges what does not authenticate:
 *
 * - Each new TCP connection takes a token from its source's bucket (`burst` tokens, refilled at
 *   `perSecond`). An empty bucket: the connection is closed before the SSH banner.
 * - A connection that authenticates gives its token back. People behind one NAT, scripted loops
 *   and ControlMaster (which needs one connection for many sessions anyway) never run dry;
 *   only more than `burst` logins from one address in flight at the same moment are refused.
 *
 * Buckets are kept per source as the back-off charges failures (`sourceKey`: an IPv6 /64 is one
 * source, since a client can rotate through its /64 at will).
 *
 * Memory is bounded: at most `maxSources` sources are tracked; full buckets are forgotten first.
 */
import { sourceKey } from './limits.ts';

export interface ConnectionRateOptions {
  /** Sustained new unauthenticated connections per second from one address; 0 turns it off. */
  perSecond: number;
  /** Connections one address may open at once before the rate applies. */
  burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** Refusals since the last log line for this address. */
  refused: number;
  loggedAt: number;
}

/** Refusals from one address are logged at most this often (a flood must not flood the log). */
const LOG_EVERY_MS = 10_000;

export type Admission = { admitted: true } | { admitted: false; log: boolean; refusedSinceLog: number };

export class ConnectionRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly opts: ConnectionRateOptions,
    private readonly maxSources = 50_000,
  ) {}

  get enabled(): boolean {
    return this.opts.perSecond > 0;
  }

  /** Takes a token for a new connection from `address`, or says it must be refused. */
  admit(address: string, now = Date.now()): Admission {
    if (!this.enabled) return { admitted: true };
    const b = this.bucket(sourceKey(address), now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { admitted: true };
    }
    b.refused++;
    if (now - b.loggedAt < LOG_EVERY_MS) return { admitted: false, log: false, refusedSinceLog: b.refused };
    const refusedSinceLog = b.refused;
    b.refused = 0;
    b.loggedAt = now;
    return { admitted: false, log: true, refusedSinceLog };
  }

  /** The connection from `address` authenticated: its token goes back. */
  refund(address: string, now = Date.now()): void {
    if (!this.enabled) return;
    const b = this.buckets.get(sourceKey(address));
    if (!b) return;
    this.refill(b, now);
    b.tokens = Math.min(this.opts.burst, b.tokens + 1);
  }

  /** Sources currently tracked (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  private bucket(source: string, now: number): Bucket {
    let b = this.buckets.get(source);
    if (b) {
      this.refill(b, now);
      return b;
    }
    if (this.buckets.size >= this.maxSources) this.evict(now);
    b = { tokens: this.opts.burst, at: now, refused: 0, loggedAt: -Infinity };
    this.buckets.set(source, b);
    return b;
  }

  private refill(b: Bucket, now: number): void {
    if (now > b.at) b.tokens = Math.min(this.opts.burst, b.tokens + ((now - b.at) / 1000) * this.opts.perSecond);
    b.at = now;
  }

  private evict(now: number): void {
    for (const [source, b] of this.buckets) {
      this.refill(b, now);
      if (b.tokens >= this.opts.burst) this.buckets.delete(source);
    }
    // Still full of live entries: drop the oldest rather than grow without bound.
    while (this.buckets.size >= this.maxSources) {
      const first = this.buckets.keys().next().value;
      if (first === undefined) break;
      this.buckets.delete(first);
    }
  }
}

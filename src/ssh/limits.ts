/**
 * Abuse limits at the front door, each with a safe default and a log line when it bites:
 * per-source back-off after repeated authentication failures, and counters for unauthenticated
 * connections and sessions per identity. (Login grace time and auth attempts per connection are
 * enforced in the connection handler itself.)
 */
export interface BackoffOptions {
  /** Failures from one address within `windowMs` before it is made to wait. */
  threshold: number;
  windowMs: number;
  /** First wait; doubles with every further failure, up to `maxMs`. */
  baseMs: number;
  maxMs: number;
}

interface SourceState {
  failures: number[];
  blockedUntil: number;
  level: number;
}

/** Tracks failures per source address. Memory is bounded: at most `maxSources` entries. */
export class SourceBackoff {
  private readonly sources = new Map<string, SourceState>();

  constructor(
    private readonly opts: BackoffOptions,
    private readonly maxSources = 50_000,
  ) {}

  /** Milliseconds this address must still wait, 0 if it may connect. */
  blockedFor(address: string, now = Date.now()): number {
    const s = this.sources.get(address);
    return s && s.blockedUntil > now ? s.blockedUntil - now : 0;
  }

  /** Records a failure; returns the new block duration in ms when this failure started one. */
  fail(address: string, now = Date.now()): number {
    let s = this.sources.get(address);
    if (!s) {
      if (this.sources.size >= this.maxSources) this.evict(now);
      s = { failures: [], blockedUntil: 0, level: 0 };
      this.sources.set(address, s);
    }
    s.failures = s.failures.filter((t) => now - t < this.opts.windowMs);
    s.failures.push(now);
    if (s.failures.length < this.opts.threshold) return 0;
    const wait = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** s.level);
    s.level++;
    s.blockedUntil = now + wait;
    s.failures = [];
    return wait;
  }

  succeed(address: string): void {
    this.sources.delete(address);
  }

  private evict(now: number): void {
    for (const [addr, s] of this.sources) {
      if (s.blockedUntil <= now && s.failures.every((t) => now - t >= this.opts.windowMs)) this.sources.delete(addr);
    }
    // Still full of live entries: drop the oldest rather than grow without bound.
    while (this.sources.size >= this.maxSources) {
      const first = this.sources.keys().next().value;
      if (first === undefined) break;
      this.sources.delete(first);
    }
  }
}

/** A named counter with a ceiling, e.g. sessions of one identity across all its connections. */
export class KeyedCounter {
  private readonly counts = new Map<string, number>();

  constructor(readonly limit: number) {}

  tryAcquire(key: string): boolean {
    const n = this.counts.get(key) ?? 0;
    if (n >= this.limit) return false;
    this.counts.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = (this.counts.get(key) ?? 0) - 1;
    if (n <= 0) this.counts.delete(key);
    else this.counts.set(key, n);
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}

/**
 * Abuse limits at the front door, each with a safe default and a log line when it bites:
 * per-source back-off after repeated authentication failures. (Login grace time and auth attempts
 * per connection are enforced in the connection handler itself; the per-identity counters both
 * front doors share are in src/session/limits.ts.)
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

/**
 * The source a failure is charged to. An IPv4 address is one source; an IPv6 client usually
 * holds a whole /64 (SLAAC, privacy addresses) and can rotate through it at will, so the /64 is
 * the source. IPv4-mapped IPv6 (`::ffff:192.0.2.1`, what a dual-stack listener sees) is the IPv4
 * address it maps.
 */
export function sourceKey(address: string): string {
  const zoneless = address.replace(/%.*$/, '');
  if (!zoneless.includes(':')) return zoneless;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(zoneless);
  if (mapped) return mapped[1]!;
  const groups = expandIPv6(zoneless);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : zoneless;
}

/** Eight hextets without leading zeros, or null when this is not an IPv6 address. */
function expandIPv6(address: string): string[] | null {
  let text = address.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4 was handled; 64:ff9b::1.2.3.4 and the like) is two hextets.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const all = [...head, ...Array<string>(missing).fill('0'), ...tail];
  if (!all.every((h) => /^[0-9a-f]{1,4}$/.test(h))) return null;
  return all.map((h) => parseInt(h, 16).toString(16));
}

/**
 * Tracks failures per source (see sourceKey). A success does not wipe a source's record: one
 * good login from a shared address (or by an attacker holding one key) must not buy another
 * round of guesses; failures expire only with their window. Memory is bounded: at most
 * `maxSources` entries.
 */
export class SourceBackoff {
  private readonly sources = new Map<string, SourceState>();

  constructor(
    private readonly opts: BackoffOptions,
    private readonly maxSources = 50_000,
  ) {}

  /** Milliseconds this address must still wait, 0 if it may connect. */
  blockedFor(address: string, now = Date.now()): number {
    const s = this.sources.get(sourceKey(address));
    return s && s.blockedUntil > now ? s.blockedUntil - now : 0;
  }

  /** Records a failure; returns the new block duration in ms when this failure started one. */
  fail(address: string, now = Date.now()): number {
    const key = sourceKey(address);
    let s = this.sources.get(key);
    if (!s) {
      if (this.sources.size >= this.maxSources) this.evict(now);
      s = { failures: [], blockedUntil: 0, level: 0 };
      this.sources.set(key, s);
    }
    // A source that behaved for longer than the longest wait since its last block starts over.
    if (s.level > 0 && now - s.blockedUntil > this.opts.maxMs) s.level = 0;
    s.failures = s.failures.filter((t) => now - t < this.opts.windowMs);
    s.failures.push(now);
    if (s.failures.length < this.opts.threshold) return 0;
    const wait = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** s.level);
    s.level++;
    s.blockedUntil = now + wait;
    s.failures = [];
    return wait;
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

/** Counters both front doors share: sessions and connections per identity, whatever door they use. */

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

/** The per-identity counts of the whole bridge: one instance, handed to the SSH server and the web door. */
export interface IdentityLimits {
  /** Live sessions per identity name (SSH session channels and browser terminals alike). */
  sessions: KeyedCounter;
  /** SSH connections per identity name. */
  connections: KeyedCounter;
}

export function identityLimits(limits: { maxSessionsPerIdentity: number; maxConnectionsPerIdentity: number }): IdentityLimits {
  return { sessions: new KeyedCounter(limits.maxSessionsPerIdentity), connections: new KeyedCounter(limits.maxConnectionsPerIdentity) };
}

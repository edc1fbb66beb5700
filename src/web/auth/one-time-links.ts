/**
 * One-time login links minted by `ssh web-login@bridge` (docs/web.md). A link carries a random
 * 256-bit token of the hashed-token store (hashed-tokens.ts: only its SHA-256 is kept). A token
 * works once, for LINK_LIFETIME_MS; when the store is full the oldest link is dropped (its user
 * mints another).
 */
import type { Identity } from '../../policy/index.ts';
import { HashedTokens } from './hashed-tokens.ts';

export const LINK_LIFETIME_MS = 60_000;
const MAX_LINKS = 1_000;

interface Link {
  identity: Identity;
  /** Where the browser goes after the login (a login name), or null: the picker. */
  target: string | null;
}

export type Redeemed = { ok: true; identity: Identity; target: string | null } | { ok: false; message: string };

export class OneTimeLinks {
  private readonly pending: HashedTokens<Link>;

  constructor(now: () => number = Date.now) {
    this.pending = new HashedTokens(MAX_LINKS, LINK_LIFETIME_MS, now);
  }

  mint(identity: Identity, target: string | null): string {
    return this.pending.mint({ identity, target });
  }

  redeem(token: string): Redeemed {
    const link = this.pending.take(token);
    if (link === null) return { ok: false, message: 'this login link is not valid: it was used already, has expired (links last 60 s) or was mistyped; run ssh web-login@BRIDGE again' };
    return { ok: true, identity: link.identity, target: link.target };
  }

  get size(): number {
    return this.pending.size;
  }
}

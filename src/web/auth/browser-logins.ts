/**
 * Browser logins: the session cookie a redeemed one-time link turns into. The cookie's value is a
 * random 256-bit secret; the store (hashed-tokens.ts) keeps its SHA-256 and the identity it stands for until it
 * expires (--web-login-lifetime) or the user logs out. Bounded: when full, the oldest login is
 * dropped.
 */
import type { Identity } from '../../policy/index.ts';
import { HashedTokens } from './hashed-tokens.ts';

const MAX_LOGINS = 10_000;
export const COOKIE_NAME = 'podbridge_login';

export class BrowserLogins {
  private readonly logins: HashedTokens<Identity>;

  constructor(lifetimeMs: number, now: () => number = Date.now) {
    this.logins = new HashedTokens(MAX_LOGINS, lifetimeMs, now);
  }

  /** A new cookie value for this identity. */
  create(identity: Identity): { value: string; maxAgeSeconds: number } {
    return { value: this.logins.mint(identity), maxAgeSeconds: Math.floor(this.logins.lifetimeMs / 1000) };
  }

  find(value: string): Identity | null {
    return this.logins.find(value);
  }

  end(value: string): void {
    this.logins.delete(value);
  }
}

/** The cookie header's value of our cookie, or null. */
export function readCookie(header: string | undefined): string | null {
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE_NAME) return part.slice(eq + 1).trim();
  }
  return null;
}

/** Set-Cookie for a login; `secure` is off only on plain-HTTP loopback (browsers drop Secure cookies there). */
export function loginCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return `${COOKIE_NAME}=${value}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

export function clearedCookie(secure: boolean): string {
  return `${COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

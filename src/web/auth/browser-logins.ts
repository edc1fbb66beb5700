/**
 * Browser logins: the session cookie a redeemed one-time link turns into. The cookie's value is a
 * random 256-bit secret; the store keeps its SHA-256 and the identity it stands for until it
 * expires (--web-login-lifetime) or the user logs out. Bounded: when full, the oldest login is
 * dropped.
 */
import { randomBytes } from 'node:crypto';
import type { Identity } from '../../policy/index.ts';
import { sha256 } from './one-time-links.ts';

const MAX_LOGINS = 10_000;
export const COOKIE_NAME = 'podbridge_login';

interface Login {
  identity: Identity;
  expires: number;
}

export class BrowserLogins {
  private readonly logins = new Map<string, Login>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A new cookie value for this identity. */
  create(identity: Identity): { value: string; maxAgeSeconds: number } {
    this.sweep();
    while (this.logins.size >= MAX_LOGINS) {
      const oldest = this.logins.keys().next().value;
      if (oldest === undefined) break;
      this.logins.delete(oldest);
    }
    const value = randomBytes(32).toString('base64url');
    this.logins.set(sha256(value).toString('hex'), { identity, expires: this.now() + this.lifetimeMs });
    return { value, maxAgeSeconds: Math.floor(this.lifetimeMs / 1000) };
  }

  find(value: string): Identity | null {
    if (!/^[A-Za-z0-9_-]{43}$/.test(value)) return null;
    const key = sha256(value).toString('hex');
    const login = this.logins.get(key);
    if (login === undefined) return null;
    if (login.expires <= this.now()) {
      this.logins.delete(key);
      return null;
    }
    return login.identity;
  }

  end(value: string): void {
    this.logins.delete(sha256(value).toString('hex'));
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, login] of this.logins) if (login.expires <= now) this.logins.delete(key);
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

/**
 * authorized_keys options with sshd's meaning (sshd(8) "AUTHORIZED_KEYS FILE FORMAT",
 * auth-options.c): names match ignoring case, options apply left to right so `restrict,pty`
 * gives a terminal back and `pty,restrict` does not, `command=` and `from=` may appear once,
 * and of several `expiry-time=` the earliest wins.
 *
 * An option the bridge cannot honour is an error, never ignored: ignoring `permitlisten=` or
 * `verify-required` would grant more than the line says. Options about features the bridge
 * never offers (agent and X11 forwarding, ~/.ssh/rc, tun devices) are accepted and change
 * nothing, because refusing them would break ordinary authorized_keys files for no gain.
 */
import { addressAllowed, parseAddressPatterns, type AddressPattern } from './address.ts';
import { parsePermitOpen, type PermitOpen } from './permit-open.ts';

export interface KeyOptions {
  /** `from=` as written (null: any source address). */
  readonly from: string | null;
  readonly fromPatterns: readonly AddressPattern[] | null;
  /** Last second (Unix time) the key is valid, from `expiry-time=`; null: no expiry. */
  readonly expiresAt: number | null;
  /** `command=`: run this instead of whatever the client asks for. */
  readonly forcedCommand: string | null;
  readonly pty: boolean;
  readonly portForwarding: boolean;
  /** `permitopen=` destinations, added up; null: no such option (any destination). */
  readonly permitOpen: readonly PermitOpen[] | null;
  /** `restrict` was given (for logs; its effect is already in the flags above). */
  readonly restricted: boolean;
}

export const NO_KEY_OPTIONS: KeyOptions = Object.freeze({
  from: null,
  fromPatterns: null,
  expiresAt: null,
  forcedCommand: null,
  pty: true,
  portForwarding: true,
  permitOpen: null,
  restricted: false,
});

export type ParsedKeyOptions = { ok: true; options: KeyOptions } | { ok: false; problem: string };

/** Flags sshd accepts, with and without `no-`, that govern features the bridge never offers. */
const INERT_FLAGS = new Set(['agent-forwarding', 'x11-forwarding', 'user-rc']);

/** Options parsed from `[options]` of a key line (already split and dequoted). */
export function parseKeyOptions(raw: readonly string[]): ParsedKeyOptions {
  let from: string | null = null;
  let fromPatterns: AddressPattern[] | null = null;
  let expiresAt: number | null = null;
  let forcedCommand: string | null = null;
  let pty = true;
  let portForwarding = true;
  let permitOpen: PermitOpen[] | null = null;
  let restricted = false;

  for (const option of raw) {
    const eq = option.indexOf('=');
    const name = (eq >= 0 ? option.slice(0, eq) : option).toLowerCase();
    const value = eq >= 0 ? option.slice(eq + 1) : null;
    const hasValue = (): string | null => (value === null ? null : `option "${name}" takes no value`);
    const needsValue = (): string | null => (value === null ? `option "${name}" needs a value (${name}="...")` : null);

    if (name === '') return fail('empty option (a stray comma?)');
    if (name === 'restrict') {
      const extra = hasValue();
      if (extra) return fail(extra);
      restricted = true;
      pty = false;
      portForwarding = false;
    } else if (name === 'pty' || name === 'no-pty') {
      const extra = hasValue();
      if (extra) return fail(extra);
      pty = name === 'pty';
    } else if (name === 'port-forwarding' || name === 'no-port-forwarding') {
      const extra = hasValue();
      if (extra) return fail(extra);
      portForwarding = name === 'port-forwarding';
    } else if (INERT_FLAGS.has(name) || INERT_FLAGS.has(name.replace(/^no-/, '')) || name === 'no-touch-required') {
      const extra = hasValue();
      if (extra) return fail(extra);
    } else if (name === 'command') {
      const missing = needsValue();
      if (missing) return fail(missing);
      if (forcedCommand !== null) return fail('multiple "command" options (sshd refuses such a line too)');
      forcedCommand = value;
    } else if (name === 'from') {
      const missing = needsValue();
      if (missing) return fail(missing);
      if (from !== null) return fail('multiple "from" options (sshd refuses such a line too); list every pattern in one from="..."');
      const parsed = parseAddressPatterns(value ?? '');
      if (!parsed.ok) return fail(`from=: ${parsed.problem}`);
      from = value;
      fromPatterns = parsed.patterns;
    } else if (name === 'expiry-time') {
      const missing = needsValue();
      if (missing) return fail(missing);
      const parsed = parseExpiryTime(value ?? '');
      if (typeof parsed === 'string') return fail(`expiry-time="${value}": ${parsed}`);
      if (expiresAt === null || parsed < expiresAt) expiresAt = parsed;
    } else if (name === 'tunnel') {
      // Forces a tun device for tun forwarding, which the bridge never offers.
      const missing = needsValue();
      if (missing) return fail(missing);
    } else if (name === 'cert-authority' || name === 'principals') {
      return fail(`"${name}" is not a key option here: list CA keys under certificateAuthorities and map principals with an identity's principals`);
    } else if (name === 'permitopen') {
      const missing = needsValue();
      if (missing) return fail(missing);
      const parsed = parsePermitOpen(value ?? '');
      if (!parsed.ok) return fail(`permitopen=${parsed.problem}`);
      (permitOpen ??= []).push(parsed.permit);
    } else if (name === 'permitlisten') {
      return fail('"permitlisten" is not supported: remote forwarding (ssh -R) is not offered by the bridge');
    } else if (name === 'environment') {
      return fail('"environment" is not supported: the bridge sets no per-key environment');
    } else if (name === 'verify-required') {
      return fail('"verify-required" is not supported: the bridge cannot check FIDO user verification, so it will not pretend to');
    } else {
      return fail(`unknown option "${name}"`);
    }
  }
  return {
    ok: true,
    options: Object.freeze({ from, fromPatterns: fromPatterns === null ? null : Object.freeze(fromPatterns), expiresAt, forcedCommand, pty, portForwarding, permitOpen: permitOpen === null ? null : Object.freeze(permitOpen), restricted }),
  };
}

export type KeyOptionsCheck = { ok: true } | { ok: false; code: 'source-address' | 'expired'; reason: string };

/** What sshd checks at login from the options: the client address and the expiry time. */
export function checkKeyOptions(options: KeyOptions, sourceAddress: string, now: Date): KeyOptionsCheck {
  if (options.fromPatterns !== null && !addressAllowed(options.fromPatterns, sourceAddress)) {
    return { ok: false, code: 'source-address', reason: `source address ${sourceAddress} is not allowed by from="${options.from}"` };
  }
  // sshd: expired when valid_before < now, in whole seconds; the named second itself is valid.
  if (options.expiresAt !== null && Math.floor(now.getTime() / 1000) > options.expiresAt) {
    return { ok: false, code: 'expired', reason: `key expired at ${new Date(options.expiresAt * 1000).toISOString()} (expiry-time)` };
  }
  return { ok: true };
}

/**
 * `YYYYMMDD[HHMM[SS]]` as sshd's parse_absolute_time: the bridge's local time zone (the TZ
 * environment variable, UTC in most containers), or UTC with a `Z` or `UTC` suffix. Returns Unix
 * seconds or why the text is invalid. Unlike mktime, an impossible date (Feb 30) is refused.
 */
export function parseExpiryTime(text: string): number | string {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?(z|utc)?$/i.exec(text);
  if (!m) return 'expected YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, optionally followed by Z for UTC';
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  const utc = m[7] !== undefined;
  if (mo < 1 || mo > 12) return `month ${m[2]} does not exist`;
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (d < 1 || d > daysInMonth) return `day ${m[3]} does not exist in that month`;
  if (h > 23 || mi > 59 || s > 59) return 'the time of day is out of range';
  const date = utc ? new Date(Date.UTC(y, mo - 1, d, h, mi, s)) : new Date(y, mo - 1, d, h, mi, s);
  // Two-digit-year quirks of the Date constructor do not apply: years are four digits here.
  if (utc) date.setUTCFullYear(y);
  else date.setFullYear(y);
  const seconds = Math.floor(date.getTime() / 1000);
  if (!(seconds > 0)) return 'the time is before 1970';
  return seconds;
}

function fail(problem: string): ParsedKeyOptions {
  return { ok: false, problem };
}

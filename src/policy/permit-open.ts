/**
 * authorized_keys `permitopen="host:port"` as sshd reads it (auth-options.c handle_permit and
 * channels.c open_match): the host may be in brackets for IPv6, `*` as the port means any port,
 * `*` as the host any host; no name lookup or pattern matching, the requested host must equal
 * the listed one as a string. Several `permitopen` options add up; with none, any destination.
 */
export interface PermitOpen {
  /** As written, brackets removed; `*` is any host. */
  readonly host: string;
  /** null: any port (`*`). */
  readonly port: number | null;
}

export type ParsedPermitOpen = { ok: true; permit: PermitOpen } | { ok: false; problem: string };

export function parsePermitOpen(value: string): ParsedPermitOpen {
  let host: string;
  let rest: string;
  if (value.startsWith('[')) {
    const close = value.indexOf(']');
    if (close < 0 || value[close + 1] !== ':') return { ok: false, problem: `"${value}": expected [HOST]:PORT` };
    host = value.slice(1, close);
    rest = value.slice(close + 2);
  } else {
    const colon = value.indexOf(':');
    if (colon < 0) return { ok: false, problem: `"${value}": missing the port (HOST:PORT, or HOST:* for any port)` };
    host = value.slice(0, colon);
    rest = value.slice(colon + 1);
  }
  if (host === '') return { ok: false, problem: `"${value}": missing the host` };
  if (rest === '*') return { ok: true, permit: Object.freeze({ host, port: null }) };
  if (!/^[0-9]{1,5}$/.test(rest) || Number(rest) < 1 || Number(rest) > 65535) {
    return { ok: false, problem: `"${value}": invalid port "${rest}" (1-65535 or *)` };
  }
  return { ok: true, permit: Object.freeze({ host, port: Number(rest) }) };
}

/** sshd's open_match over the list; null (no permitopen option) allows everything. */
export function permitOpenAllows(permits: readonly PermitOpen[] | null, host: string, port: number): boolean {
  if (permits === null) return true;
  return permits.some((p) => (p.port === null || p.port === port) && (p.host === '*' || p.host === host));
}

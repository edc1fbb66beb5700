/**
 * Source-address patterns as sshd reads them in `from="..."`: a comma-separated list of
 * addresses, CIDR networks and wildcard patterns, each optionally negated with `!`. A negated
 * match refuses outright; otherwise one positive match is needed (sshd's addr_match_list and
 * match_host_and_ip with UseDNS no).
 *
 * Differences from sshd, each failing closed and reported at load rather than at login:
 * - host names (`*.example.com`) are refused: the bridge never looks names up (sshd with
 *   `UseDNS no` would silently never match them, and a `!*.evil.example` that never matches
 *   is a hole nobody notices);
 * - a network with host bits set (`10.1.2.3/8`) is refused, as sshd refuses it at login time;
 * - spaces around an entry are refused (sshd reads none, so ` 10.0.0.1` would never match);
 * - an IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is refused with its IPv4 spelling: sshd
 *   compares an IPv4 client as IPv4, so such a network never matches there.
 * A client address with a zone id (`fe80::1%eth0`) is compared without it.
 *
 * The same matcher serves certificate `source-address` lists (ssh/certificates.ts: CIDRs only,
 * no negation), so `from=` and `source-address` agree on every address.
 */
import net from 'node:net';
import { wildcardMatch } from './glob.ts';

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
}

export type AddressPattern =
  | { negated: boolean; kind: 'network'; text: string; network: IpAddress; prefix: number }
  | { negated: boolean; kind: 'wildcard'; text: string; pattern: string };

export type ParsedPatterns = { ok: true; patterns: AddressPattern[] } | { ok: false; problem: string };

/** Parses an address text; IPv4-mapped IPv6 (`::ffff:10.0.0.1`, as dual-stack sockets report
 *  IPv4 clients) becomes plain IPv4 so `from="10.0.0.0/8"` matches it. Zone ids are dropped. */
export function parseIpAddress(text: string): IpAddress | null {
  const bare = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  const family = net.isIP(bare);
  if (family === 4) return { family: 4, bytes: parseV4(bare) };
  if (family !== 6) return null;
  const bytes = parseV6(bare);
  if (bytes === null) return null;
  if (isV4Mapped(bytes)) return { family: 4, bytes: bytes.slice(12) };
  return { family: 6, bytes };
}

/** Parses a from= list (also used for certificate source-address with `allowNegation` off). */
export function parseAddressPatterns(list: string, options: { allowNegation?: boolean; allowWildcards?: boolean } = {}): ParsedPatterns {
  const allowNegation = options.allowNegation ?? true;
  const allowWildcards = options.allowWildcards ?? true;
  const patterns: AddressPattern[] = [];
  const items = list.split(',');
  for (const raw of items) {
    const item = raw.trim();
    if (item !== raw && item !== '') return { ok: false, problem: `"${raw}" has spaces around it: write the list without them, as sshd reads it` };
    const negated = item.startsWith('!');
    const text = negated ? item.slice(1) : item;
    if (text.length === 0) return { ok: false, problem: `empty pattern in "${list}"` };
    if (negated && !allowNegation) return { ok: false, problem: `negation is not allowed here ("${item}")` };
    if (text.includes('*') || text.includes('?')) {
      if (!allowWildcards) return { ok: false, problem: `wildcards are not allowed here ("${item}")` };
      if (!/^[0-9a-fA-F.:*?]+$/.test(text)) return { ok: false, problem: hostNameProblem(item) };
      patterns.push({ negated, kind: 'wildcard', text: item, pattern: text.toLowerCase() });
      continue;
    }
    const slash = text.indexOf('/');
    const addressText = slash >= 0 ? text.slice(0, slash) : text;
    if (addressText.includes('%')) return { ok: false, problem: `"${item}" has a zone id: write the address without %ZONE` };
    const network = parseIpAddress(addressText);
    if (network === null) {
      return { ok: false, problem: /[g-zG-Z_]/.test(addressText) ? hostNameProblem(item) : `"${item}" is not an IP address or CIDR network` };
    }
    // An IPv4-mapped network is written as IPv6; keep its prefix in IPv6 terms only if it stayed v6.
    const width = network.family === 4 ? 32 : 128;
    let prefix = width;
    if (slash >= 0) {
      const digits = text.slice(slash + 1);
      if (!/^\d{1,3}$/.test(digits)) return { ok: false, problem: `"${item}" has an invalid prefix length "/${digits}"` };
      prefix = Number(digits);
      if (net.isIP(addressText) === 6 && network.family === 4) {
        return { ok: false, problem: `"${item}" is an IPv4-mapped IPv6 network, which sshd never matches (it compares IPv4 clients as IPv4): write it as ${formatNetwork(network, Math.max(0, prefix - 96))}` };
      }
      if (prefix < 0 || prefix > width) return { ok: false, problem: `"${item}": the prefix length must be 0 to ${width}` };
      if (!hostBitsZero(network.bytes, prefix)) {
        return { ok: false, problem: `"${item}" has host bits set after /${prefix} (did you mean ${formatNetwork(network, prefix)}?)` };
      }
    }
    patterns.push({ negated, kind: 'network', text: item, network, prefix });
  }
  return { ok: true, patterns };
}

/** sshd semantics: a matching negated pattern refuses; else at least one positive match allows. */
export function addressAllowed(patterns: readonly AddressPattern[], address: string): boolean {
  const ip = parseIpAddress(address);
  // The text sshd would compare wildcard patterns against: the canonical address string.
  const text = ip === null ? address.toLowerCase() : formatAddress(ip);
  let allowed = false;
  for (const p of patterns) {
    const hit = p.kind === 'network' ? ip !== null && inNetwork(ip, p.network, p.prefix) : wildcardMatch(p.pattern, text);
    if (!hit) continue;
    if (p.negated) return false;
    allowed = true;
  }
  return allowed;
}

export function formatAddress(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join('.');
  // Let Node produce the canonical compressed form RFC 5952 asks for.
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i]! << 8) | ip.bytes[i + 1]!).toString(16));
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

function formatNetwork(ip: IpAddress, prefix: number): string {
  const bytes = ip.bytes.slice();
  for (let bit = prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return `${formatAddress({ family: ip.family, bytes })}/${prefix}`;
}

function inNetwork(ip: IpAddress, network: IpAddress, prefix: number): boolean {
  if (ip.family !== network.family) return false;
  let bit = 0;
  for (; bit + 8 <= prefix; bit += 8) if (ip.bytes[bit >> 3] !== network.bytes[bit >> 3]) return false;
  if (bit === prefix) return true;
  const mask = (0xff << (8 - (prefix - bit))) & 0xff;
  return ((ip.bytes[bit >> 3]! ^ network.bytes[bit >> 3]!) & mask) === 0;
}

function hostBitsZero(bytes: Uint8Array, prefix: number): boolean {
  for (let bit = prefix; bit < bytes.length * 8; bit++) if ((bytes[bit >> 3]! & (0x80 >> (bit & 7))) !== 0) return false;
  return true;
}

function hostNameProblem(item: string): string {
  return `"${item}" is a host name pattern: podbridge never looks names up (as sshd with UseDNS no), so it could never match; use addresses or CIDR networks`;
}

function parseV4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

/** Only called on text net.isIP accepted as IPv6. */
function parseV6(text: string): Uint8Array | null {
  let head = text;
  let v4Tail: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    v4Tail = parseV4(text.slice(lastColon + 1));
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const left = halves[0] === '' ? [] : (halves[0] ?? '').split(':');
  const right = halves.length === 2 ? (halves[1] === '' ? [] : (halves[1] ?? '').split(':')) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return null;
  const groups = [...left, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...right];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    bytes[i * 2] = v >> 8;
    bytes[i * 2 + 1] = v & 0xff;
  });
  if (v4Tail !== null) bytes.set(v4Tail, 12);
  return bytes;
}

function isV4Mapped(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * Logins by an authenticating proxy in front (oauth2-proxy, an OIDC ingress): the proxy names the
 * user in a header (--web-user-header). The header is believed only from --web-trusted-proxy
 * addresses; from anywhere else it is refused, never ignored, so a forged header shows in the log.
 *
 * The user maps to a policy identity by name, else by certificate principal (the same names an
 * SSH certificate would carry), so one person has one identity, one set of rules and one
 * Kubernetes user whichever door they use. Group membership is the policy's: the proxy's groups
 * header is recorded, not trusted to widen access.
 */
import type { Identity, Policy } from '../../policy/index.ts';
import { addressAllowed, parseAddressPatterns } from '../../policy/index.ts';

type Patterns = Extract<ReturnType<typeof parseAddressPatterns>, { ok: true }>['patterns'];

export interface ProxySettings {
  trustedProxies: readonly string[];
  userHeader: string;
  groupsHeader: string;
}

export type ProxyOutcome =
  /** No user header: the request is not a proxy login. */
  | { kind: 'none' }
  | { kind: 'identity'; identity: Identity; groups: string[] }
  | { kind: 'refused'; status: 401 | 403; message: string; forged: boolean };

/** Longest user name accepted from the header (OIDC subjects and emails fit). */
const MAX_USER = 256;

export class ProxyLogin {
  private readonly patterns: Readonly<Patterns>;
  private readonly userHeader: string;
  private readonly groupsHeader: string;

  constructor(settings: ProxySettings) {
    const parsed = settings.trustedProxies.length > 0 ? parseAddressPatterns(settings.trustedProxies.join(','), { allowNegation: false, allowWildcards: false }) : ({ ok: true, patterns: [] } as const);
    if (!parsed.ok) throw new Error(`--web-trusted-proxy: ${parsed.problem}`);
    this.patterns = parsed.patterns;
    this.userHeader = settings.userHeader.toLowerCase();
    this.groupsHeader = settings.groupsHeader.toLowerCase();
  }

  get enabled(): boolean {
    return this.patterns.length > 0;
  }

  trusts(address: string): boolean {
    return this.patterns.length > 0 && addressAllowed(this.patterns, address);
  }

  check(headers: Record<string, string | string[] | undefined>, remote: string, policy: Policy): ProxyOutcome {
    const raw = headers[this.userHeader];
    if (raw === undefined) {
      if (this.trusts(remote)) return { kind: 'refused', status: 401, message: `the authenticating proxy at ${remote} sent no ${this.userHeader} header; check its configuration`, forged: false };
      return { kind: 'none' };
    }
    if (!this.trusts(remote)) {
      return { kind: 'refused', status: 403, message: `a ${this.userHeader} header came from ${remote}, which is not a --web-trusted-proxy address; refused`, forged: true };
    }
    const user = Array.isArray(raw) ? raw[0] ?? '' : raw;
    if (user === '' || user.length > MAX_USER || !/^[\x21-\x7e]+$/.test(user)) {
      return { kind: 'refused', status: 403, message: `the proxy's ${this.userHeader} header is empty, too long or not printable ASCII`, forged: false };
    }
    const name = policy.identities.has(user) ? user : policy.principals.get(user);
    const who = name === undefined ? undefined : policy.identities.get(name);
    if (who === undefined) {
      return { kind: 'refused', status: 403, message: `web user "${user}" is neither an identity nor a certificate principal in the policy ${policy.file}; add it there`, forged: false };
    }
    const groupsRaw = headers[this.groupsHeader];
    const groups = (Array.isArray(groupsRaw) ? groupsRaw.join(',') : groupsRaw ?? '')
      .split(',')
      .map((g) => g.trim())
      .filter((g) => g !== '')
      .slice(0, 64);
    const identity: Identity = Object.freeze({
      name: who.name,
      keyFingerprint: 'none (web proxy login)',
      keyComment: null,
      kubernetes: who.kubernetes,
      groups: who.groups,
      source: Object.freeze({ kind: 'web-proxy' as const, proxy: remote, user }),
      forcedCommand: null,
      permits: Object.freeze({ pty: true, portForwarding: false, permitOpen: null }),
    });
    return { kind: 'identity', identity, groups };
  }
}

/**
 * Who sent this request: an authenticating proxy's header (from a trusted address only), else the
 * login cookie. Every page API call and every WebSocket upgrade asks here; nothing else in the web
 * door decides who someone is.
 */
import type http from 'node:http';
import type { Logger } from '../log.ts';
import type { Identity, Policy, PolicySource } from '../policy/index.ts';
import { BrowserLogins, readCookie } from './auth/browser-logins.ts';
import type { ProxyLogin } from './auth/proxy-login.ts';

export type Who =
  | { ok: true; identity: Identity; via: 'proxy' | 'cookie'; remote: string }
  | { ok: false; status: 401 | 403; message: string; remote: string };

export const NOT_LOGGED_IN = 'not logged in: run ssh web-login@BRIDGE and open the link it prints (or come through the login proxy)';

/** The peer's address as the policy's address rules write it (no IPv4-mapped prefix). */
export function remoteAddress(req: http.IncomingMessage): string {
  return (req.socket.remoteAddress ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

export class WhoIsIt {
  constructor(
    private readonly policy: PolicySource,
    private readonly proxy: ProxyLogin,
    readonly logins: BrowserLogins,
    private readonly log: Logger,
  ) {}

  check(req: http.IncomingMessage): Who {
    const remote = remoteAddress(req);
    const policy = this.policy.current();
    const byProxy = this.proxy.check(req.headers, remote, policy);
    if (byProxy.kind === 'refused') {
      if (byProxy.forged) this.log.warn({ remote, path: (req.url ?? '').split('?')[0] }, `web: ${byProxy.message}`);
      else this.log.info({ remote }, `web: ${byProxy.message}`);
      return { ok: false, status: byProxy.status, message: byProxy.message, remote };
    }
    if (byProxy.kind === 'identity') return { ok: true, identity: byProxy.identity, via: 'proxy', remote };
    const cookie = readCookie(req.headers.cookie);
    const identity = cookie === null ? null : this.logins.find(cookie);
    if (identity === null) return { ok: false, status: 401, message: NOT_LOGGED_IN, remote };
    if (!stillListed(policy, identity)) {
      if (cookie !== null) this.logins.end(cookie);
      return { ok: false, status: 403, message: `identity "${identity.name}" is no longer in the policy ${policy.file}; log in again`, remote };
    }
    return { ok: true, identity, via: 'cookie', remote };
  }
}

/** A cookie outlives no policy edit that removed its identity (or, without a policy, its key). */
function stillListed(policy: Policy, identity: Identity): boolean {
  if (policy.kind === 'policy-file') return policy.identities.has(identity.name);
  for (const entries of policy.keys.values()) if (entries.some((k) => k.fingerprint === identity.keyFingerprint)) return true;
  return false;
}

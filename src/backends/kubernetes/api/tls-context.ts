/**
 * One TLS context per distinct set of TLS credentials, shared by every connection to the API
 * server. Given `ca`/`cert`/`key` and no `secureContext`, `tls.connect` builds a new context for
 * each connection: an OpenSSL SSL_CTX with its own certificate store, about 20 KiB of native
 * memory that each session's exec connection held for its whole life (measured with
 * bench/tools/tls-connection-memory.ts: 68 KiB per idle TLS connection, 48 KiB with a shared
 * context), and the CPU of parsing the certificates again at every session start.
 *
 * The credentials are still read afresh for every request (client-node re-reads certificate
 * files, so rotation works): the context is looked up by their content, and a new one is made
 * when they change. Only the newest few are kept.
 */
import crypto from 'node:crypto';
import https from 'node:https';
import tls from 'node:tls';

/** The options that go into a context, as client-node's applyToHTTPSOptions sets them. */
const CONTEXT_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase'] as const;
/** Anything else that shapes a context: when present, the connection builds its own as before. */
const OTHER_CONTEXT_KEYS = ['ciphers', 'ecdhCurve', 'crl', 'dhparam', 'secureOptions', 'secureProtocol', 'sessionIdContext', 'honorCipherOrder', 'clientCertEngine', 'minVersion', 'maxVersion', 'sigalgs', 'privateKeyEngine', 'privateKeyIdentifier'] as const;
// Old contexts stay alive while their connections do; a credential rotation adds one entry.
const MAX_CONTEXTS = 4;

type Options = https.RequestOptions & { secureContext?: tls.SecureContext };

export class TlsContextCache {
  private readonly contexts = new Map<string, tls.SecureContext>();

  /** Puts a shared `secureContext` into `opts` (and drops the raw credentials it replaces from
   *  `opts` and from a plain https.Agent made for this one request, so no connection keeps its
   *  own copy); leaves `opts` alone when it carries TLS settings this cache does not key on. */
  apply(opts: Options): void {
    if (opts.secureContext !== undefined) return;
    const src = opts as Record<string, unknown>;
    if (OTHER_CONTEXT_KEYS.some((k) => src[k] !== undefined)) return;
    if (CONTEXT_KEYS.every((k) => src[k] === undefined)) return; // the default context is shared already
    const key = fingerprint(CONTEXT_KEYS.map((k) => src[k]));
    if (key === null) return;
    let context = this.contexts.get(key);
    if (context === undefined) {
      context = tls.createSecureContext(Object.fromEntries(CONTEXT_KEYS.filter((k) => src[k] !== undefined).map((k) => [k, src[k]])));
      this.contexts.set(key, context);
      while (this.contexts.size > MAX_CONTEXTS) this.contexts.delete(this.contexts.keys().next().value as string);
    } else {
      // Most recently used last.
      this.contexts.delete(key);
      this.contexts.set(key, context);
    }
    opts.secureContext = context;
    for (const k of CONTEXT_KEYS) delete src[k];
    // An Agent merges its own options over the request's; client-node makes one per request
    // with the same credentials. A proxy agent (another class) is left as it is.
    const agent = opts.agent;
    if (agent instanceof https.Agent && agent.constructor === https.Agent) {
      const agentOpts = (agent as unknown as { options: Record<string, unknown> }).options;
      for (const k of CONTEXT_KEYS) delete agentOpts[k];
      agentOpts.secureContext = context;
    }
  }
}

/** A digest of the credential values (strings, Buffers, or arrays of them), or null for a shape
 *  this cache does not know (e.g. pfx objects with their own passphrases). */
function fingerprint(values: unknown[]): string | null {
  const h = crypto.createHash('sha256');
  const add = (v: unknown): boolean => {
    if (v === undefined) {
      h.update('\0u');
      return true;
    }
    if (typeof v === 'string' || Buffer.isBuffer(v)) {
      const b = typeof v === 'string' ? Buffer.from(v) : v;
      h.update(`\0${b.length}:`);
      h.update(b);
      return true;
    }
    if (Array.isArray(v)) {
      h.update(`\0a${v.length}`);
      return v.every(add);
    }
    return false;
  };
  return values.every(add) ? h.digest('hex') : null;
}

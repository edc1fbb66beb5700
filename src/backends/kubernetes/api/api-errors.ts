/**
 * Turns what the API server (or the network in front of it) says into one-line BridgeErrors
 * that name the server or the object and say what to do.
 */
import { BridgeError } from '../../../errors.ts';
import { oneLine, parseStatus, type KubeStatus } from '../../exec/kube-status.ts';

/** Who we were talking to, for messages. */
export interface ApiServerRef {
  /** Base URL, e.g. https://10.0.0.1:6443 */
  server: string;
  /** The kubeconfig context, so the operator knows which credentials to check. */
  contextName: string;
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
  'EPROTO',
]);

const NETWORK_WORDS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed (temporary DNS failure)',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EPIPE: 'connection closed',
};

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

function errorMessage(err: unknown): string {
  return oneLine(err instanceof Error ? err.message : String(err), 200);
}

export function isTlsFailure(err: unknown): boolean {
  const code = errorCode(err);
  if (code === undefined) return false;
  return TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.includes('CERT');
}

/** A request that never got an HTTP answer: refused, unresolvable, timed out, TLS failure. */
export function networkFailure(err: unknown, api: ApiServerRef): BridgeError {
  const code = errorCode(err);
  const detail = { server: api.server, context: api.contextName, code, error: errorMessage(err) };
  if (isTlsFailure(err)) {
    return new BridgeError(
      'tls',
      `TLS with the Kubernetes API server at ${api.server} failed: ${errorMessage(err)}; check certificate-authority and the client certificate of context "${api.contextName}" in the kubeconfig`,
      { cause: err, detail },
    );
  }
  const words = (code !== undefined ? NETWORK_WORDS[code] : undefined) ?? errorMessage(err);
  return new BridgeError(
    'api-unreachable',
    `cannot reach the Kubernetes API server at ${api.server}: ${words}; check --kubeconfig/--context and the network`,
    { cause: err, detail },
  );
}

export function connectTimeout(api: ApiServerRef, timeoutMs: number, connected: boolean): BridgeError {
  const seconds = Number((timeoutMs / 1000).toFixed(1));
  const message = connected
    ? `the Kubernetes API server at ${api.server} did not answer within ${seconds} s; check that it is healthy`
    : `cannot reach the Kubernetes API server at ${api.server}: connection timed out after ${seconds} s; check --kubeconfig/--context and the network`;
  return new BridgeError('api-unreachable', message, { detail: { server: api.server, connected } });
}

/** Credentials could not even be produced (exec plugin, OIDC refresh, unreadable key file). */
export function credentialFailure(err: unknown, api: ApiServerRef): BridgeError {
  return new BridgeError(
    'unauthorized',
    `cannot get credentials for the Kubernetes API server at ${api.server} (context "${api.contextName}"): ${errorMessage(err)}`,
    { cause: err, detail: { server: api.server, context: api.contextName } },
  );
}

export function unauthorized(api: ApiServerRef, status: KubeStatus | null): BridgeError {
  return new BridgeError(
    'unauthorized',
    `the Kubernetes API server at ${api.server} rejected podbridge's credentials (401 Unauthorized); check the user of context "${api.contextName}" in the kubeconfig`,
    { detail: { server: api.server, context: api.contextName, status: status?.message } },
  );
}

/** 403: quote the RBAC reason; it already names the user, verb, resource and namespace. */
export function forbidden(status: KubeStatus | null, fallback: string): BridgeError {
  const reason = status?.message !== undefined && status.message !== '' ? oneLine(status.message) : fallback;
  return new BridgeError('forbidden', `Kubernetes denied access: ${reason}; ask a cluster admin to grant it`, {
    detail: { status },
  });
}

/** Any other refusal we have no better words for: quote the server. */
export function unexpectedResponse(api: ApiServerRef, what: string, httpStatus: number, body: unknown): BridgeError {
  const status = parseStatus(body);
  const reason = status?.message !== undefined && status.message !== '' ? `: ${oneLine(status.message)}` : '';
  return new BridgeError('internal', `the Kubernetes API server at ${api.server} answered ${httpStatus} to ${what}${reason}`, {
    detail: { server: api.server, httpStatus, status },
  });
}

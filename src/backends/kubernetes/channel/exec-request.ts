/**
 * The exec request, whatever the protocol: its URL, and what a refused upgrade means for the user
 * (the API server's Status quoted: RBAC reason, missing pod, bad container).
 */
import { BridgeError } from '../../../errors.ts';
import { forbidden, unauthorized, type ApiServerRef } from '../api/api-errors.ts';
import { oneLine, parseStatus } from '../../exec/kube-status.ts';
import { execFailure } from '../exec-errors.ts';
import type { ExecTarget } from '../api/target-resolution.ts';
import { markProtocolRefusal } from './upgrade.ts';

export interface ExecRequest {
  target: ExecTarget;
  argv: readonly string[];
  tty: boolean;
}

export function execPath(target: ExecTarget): string {
  return `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/exec`;
}

export function execQuery(req: ExecRequest): URLSearchParams {
  const query = new URLSearchParams();
  for (const arg of req.argv) query.append('command', arg);
  query.set('container', req.target.container);
  query.set('stdin', 'true');
  query.set('stdout', 'true');
  // With a TTY the server refuses a separate stderr: the terminal carries both.
  query.set('stderr', req.tty ? 'false' : 'true');
  query.set('tty', req.tty ? 'true' : 'false');
  return query;
}

/** The API server's answer to an exec upgrade instead of 101 (its body is a Status), marked when
 *  it refuses the protocol rather than the exec. */
export function refusedExec(api: ApiServerRef, target: ExecTarget, httpStatus: number, body: Buffer): BridgeError {
  const err = refusedUpgrade(api, target, httpStatus, body);
  return refusesProtocol(httpStatus, body) ? markProtocolRefusal(err) : err;
}

/** The API server answered the upgrade with an HTTP error; its body is a Status. */
function refusedUpgrade(api: ApiServerRef, target: ExecTarget, httpStatus: number, body: Buffer): BridgeError {
  const status = parseStatus(body);
  // The API server answers with a Status; a kubelet or proxy behind it may answer in plain text.
  const plain = body.length > 0 && status === null ? oneLine(body.toString('utf8'), 200) : null;
  const serverWords = status?.message !== undefined && status.message !== '' ? oneLine(status.message) : plain;
  const where = `pod "${target.pod}" in namespace "${target.namespace}"`;
  const detail = { ...target, httpStatus, status: status ?? plain };
  switch (httpStatus) {
    case 401:
      return unauthorized(api, status);
    case 403:
      if (serverWords === null) {
        // A bare 403 is also how the kubelet's WebSocket handshake refuses unknown subprotocols.
        return new BridgeError(
          'forbidden',
          `exec into ${where} was refused with a bare 403: either RBAC denies it, or the server speaks neither v5.channel.k8s.io nor v4.channel.k8s.io`,
          { detail },
        );
      }
      return forbidden(status, `exec into ${where} is forbidden`);
    case 404:
      return new BridgeError('pod-not-found', `${where} not found when starting the command (it may have just been deleted)`, {
        detail,
      });
  }
  if (httpStatus >= 200 && httpStatus < 400) {
    return new BridgeError(
      'exec-failed',
      `the Kubernetes API server at ${api.server} answered ${httpStatus} instead of upgrading to a WebSocket; a proxy in between may not pass WebSockets`,
      { detail },
    );
  }
  const words = serverWords ?? `HTTP ${httpStatus}`;
  if (/is not valid for pod/i.test(words)) {
    return new BridgeError('container-not-found', `container "${target.container}" not found in ${where}: ${words}`, { detail });
  }
  // What the kubelet behind a proxy says in plain text: no /bin/sh, container gone, anything else.
  return execFailure(target, words, detail);
}

/**
 * Whether an HTTP answer to an upgrade refuses the protocol rather than the exec: a bare 403 (the
 * kubelet's WebSocket handshake when no subprotocol matches), the SPDY handshake's "unable to
 * negotiate protocol", a proxy that dropped the Upgrade header ("Upgrade request required",
 * "missing upgrade headers"), a method or version the handshake does not take, or an answer that
 * is no refusal at all (2xx/3xx: something in between does not pass upgrades). RBAC, missing pods
 * and containers, and anything else with a Status of its own are refusals of the exec itself.
 */
function refusesProtocol(httpStatus: number, body: Buffer): boolean {
  if (httpStatus >= 200 && httpStatus < 400) return true;
  if (httpStatus === 405 || httpStatus === 426) return true;
  const text = body.toString('utf8');
  const status = parseStatus(body);
  const words = status?.message ?? text;
  if (httpStatus === 403) return body.length === 0 || /unable to negotiate protocol/.test(words);
  if (httpStatus === 400) {
    return /Upgrade request required|missing upgrade headers|X-Stream-Protocol-Version is required|bad method|mismatch challenge|WebSocket Version/i.test(words);
  }
  return false;
}

/**
 * What a failed port-forward means for the user. The runtime (containerd's CRI server, CRI-O)
 * writes its dial error as text on the error stream: "... dial tcp4 127.0.0.1:5432: connect:
 * connection refused ...". Said plainly: nothing listens on that port in the pod.
 */
import { BridgeError } from '../../../errors.ts';
import { forbidden, unauthorized, type ApiServerRef } from '../api/api-errors.ts';
import { oneLine, parseStatus } from '../../exec/kube-status.ts';
import { markProtocolRefusal } from '../channel/upgrade.ts';

export interface ForwardPlace {
  namespace: string;
  pod: string;
}

export function forwardError(place: ForwardPlace, port: number, text: string): BridgeError {
  const where = `pod ${place.pod} in namespace ${place.namespace}`;
  if (/connection refused/i.test(text)) {
    return new BridgeError('connect-failed', `${where}: nothing listens on port ${port} (on localhost in the pod)`, { detail: { runtime: oneLine(text) } });
  }
  if (/timed out|timeout/i.test(text)) {
    return new BridgeError('connect-failed', `${where}: port ${port} did not answer (${oneLine(text, 200)})`);
  }
  return new BridgeError('connect-failed', `${where}: port ${port}: ${oneLine(text, 300)}`);
}

export function forwardClosedEarly(place: ForwardPlace, port: number): BridgeError {
  return new BridgeError('connect-failed', `pod ${place.pod} in namespace ${place.namespace}: the port-forward to port ${port} closed before it carried anything`);
}

/** The API server answered the port-forward upgrade with an HTTP error; its body is a Status. */
export function refusedForward(api: ApiServerRef, place: ForwardPlace, port: number, httpStatus: number, body: Buffer): BridgeError {
  const status = parseStatus(body);
  const words = status?.message ? oneLine(status.message) : body.length > 0 ? oneLine(body.toString('utf8'), 200) : `HTTP ${httpStatus}`;
  const where = `pod ${place.pod} in namespace ${place.namespace}`;
  const detail = { ...place, port, httpStatus, status: status ?? words };
  if (httpStatus === 401) return unauthorized(api, status);
  if (httpStatus === 403) return forbidden(status, `port-forward to ${where} is forbidden (RBAC: create and get on pods/portforward)`);
  if (httpStatus === 404) return new BridgeError('pod-not-found', `${where} not found when starting the port-forward (it may have just been deleted)`, { detail });
  return new BridgeError('connect-failed', `${where}: the Kubernetes API server refused the port-forward to port ${port}: ${words}`, { detail });
}

/** Refusals that speak of the protocol, not of the pod or RBAC: the next protocol may do. */
function refusesForwardProtocol(httpStatus: number, body: Buffer): boolean {
  if (httpStatus === 400 || httpStatus === 405 || httpStatus === 426) return true;
  if (httpStatus === 403) return body.length === 0 || /unable to negotiate protocol|not supported/i.test(body.toString('utf8'));
  return httpStatus >= 200 && httpStatus < 400;
}

/** The answer to a port-forward upgrade instead of 101, marked when it refuses the protocol. */
export function refusedForwardUpgrade(api: ApiServerRef, place: ForwardPlace, port: number, httpStatus: number, body: Buffer): BridgeError {
  const err = refusedForward(api, place, port, httpStatus, body);
  return refusesForwardProtocol(httpStatus, body) ? markProtocolRefusal(err) : err;
}

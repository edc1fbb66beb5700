/**
 * Port forwarding for the local backend: the "pod" is this machine, so a forward is a TCP
 * connection to 127.0.0.1:PORT here. Connecting first and answering afterwards gives the SSH
 * client a channel-open failure, never an accepted channel that dies at once.
 */
import net from 'node:net';
import type { ForwardContext, ForwardedConnection } from './backend.ts';
import { BridgeError } from '../errors.ts';
import type { Target } from '../target.ts';

const CONNECT_TIMEOUT_MS = 10_000;

export function forwardLocal(target: Target, port: number, ctx: ForwardContext): Promise<ForwardedConnection> {
  const place = { namespace: target.namespace ?? 'default', pod: target.ref.name, container: target.container ?? 'local' };
  const denied = ctx.authorizeResolved?.(place);
  if (denied) return Promise.reject(denied);
  return new Promise((resolve, reject) => {
    // allowHalfOpen: the pod's FIN must not close our sending side (half-close passes through).
    const socket = net.connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true });
    const fail = (err: BridgeError) => {
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new BridgeError('connect-failed', `this machine (local backend): port ${port} did not answer within ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = err.code === 'ECONNREFUSED' ? `nothing listens on port ${port}` : `cannot connect to port ${port} (${err.code ?? err.message})`;
      fail(new BridgeError('connect-failed', `this machine (local backend): ${why}`, { cause: err }));
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve({ stream: socket, place, protocol: `TCP to 127.0.0.1:${port} on this machine`, canHalfClose: true });
    });
  });
}

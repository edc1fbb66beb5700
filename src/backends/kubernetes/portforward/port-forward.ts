/**
 * Backend.forward for Kubernetes: one TCP connection to a port on the pod's loopback through
 * pods/portforward, established before the SSH channel is accepted.
 *
 * "Established" is as much as the protocol can tell. The runtime dials the port after the
 * streams open and reports only failure (text on the error stream); success has no signal. So
 * a connection counts as established when the pod's first bytes arrive (SSH, MySQL, SMTP speak
 * first), or when `confirmMs` passed without an error (HTTP waits for the client). A port that
 * was confirmed once on this pod is taken as open at once afterwards; should it refuse after
 * all, the channel closes and the bridge logs the runtime's words.
 *
 * Protocols, in kubectl 1.31+'s order: SPDY/3.1 tunnelled in WebSocket, SPDY/3.1, then plain
 * WebSocket `v4.channel.k8s.io` (one WebSocket per connection, no half-close). The first that
 * the API server accepts is remembered; the SPDY ones share one upgraded connection per pod and
 * identity between all forwards.
 */
import type { ForwardedConnection } from '../../backend.ts';
import type { Logger } from '../../../log.ts';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { forwardClosedEarly, forwardError, type ForwardPlace } from './portforward-errors.ts';
import { isProtocolRefusal } from '../channel/upgrade.ts';
import { SpdyForwardSession, type SpdyVia } from './spdy-portforward.ts';
import { openWebSocketForward, PORTFORWARD_V4, type ForwardSignals } from './websocket-portforward.ts';

type Path = SpdyVia | 'websocket-v4';
const PATHS: readonly Path[] = ['websocket', 'spdy', 'websocket-v4'];

interface Opened {
  stream: import('node:stream').Duplex & { signals: ForwardSignals | null };
  protocol: string;
  canHalfClose: boolean;
}

/** How long a silent new connection waits for the runtime's refusal before it counts as open. */
export const DEFAULT_FORWARD_CONFIRM_MS = 1_000;
/** Pods x ports remembered as open; old entries are dropped first. */
const MAX_KNOWN_OPEN = 4096;

export interface PortForwarder {
  /** Closes the shared SPDY connections (backend shutdown). */
  close(): Promise<void>;
  forward(api: KubeApiClient, headers: RequestHeaders, place: ForwardPlace & { container: string }, port: number, log: Logger): Promise<ForwardedConnection>;
}

export function createPortForwarder(confirmMs = DEFAULT_FORWARD_CONFIRM_MS): PortForwarder {
  const knownOpen = new Set<string>();
  const remember = (key: string) => {
    knownOpen.delete(key);
    knownOpen.add(key);
    if (knownOpen.size > MAX_KNOWN_OPEN) knownOpen.delete(knownOpen.values().next().value as string);
  };
  const sessions = new Map<string, Promise<SpdyForwardSession>>();
  let learnt: Path | null = null;

  const openSpdy = async (api: KubeApiClient, headers: RequestHeaders, place: ForwardPlace, port: number, via: SpdyVia): Promise<Opened> => {
    const key = `${via} ${place.namespace}/${place.pod} ${JSON.stringify(headers)}`;
    let pending = sessions.get(key);
    if (pending === undefined) {
      pending = SpdyForwardSession.open(api, headers, place, via, () => sessions.delete(key));
      sessions.set(key, pending);
      pending.catch(() => sessions.delete(key));
    }
    let session = await pending;
    if (!session.isOpen) {
      sessions.delete(key);
      return openSpdy(api, headers, place, port, via);
    }
    const stream = await session.connect(port);
    return { stream, protocol: session.description, canHalfClose: true };
  };

  const open = async (api: KubeApiClient, headers: RequestHeaders, place: ForwardPlace, port: number, log: Logger): Promise<Opened> => {
    const order = learnt === null ? PATHS : [learnt];
    let lastRefusal: unknown = null;
    for (const path of order) {
      try {
        const opened =
          path === 'websocket-v4'
            ? { stream: await openWebSocketForward(api, headers, place, port), protocol: `${PORTFORWARD_V4} over WebSocket`, canHalfClose: false }
            : await openSpdy(api, headers, place, port, path);
        if (learnt !== path) log.info({ protocol: opened.protocol }, 'port-forward protocol chosen');
        learnt = path;
        return opened;
      } catch (err) {
        if (!isProtocolRefusal(err)) throw err;
        log.debug({ path, why: (err as Error).message }, 'port-forward protocol refused; trying the next');
        lastRefusal = err;
      }
    }
    throw lastRefusal;
  };

  return {
    async close() {
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.all(all.map((p) => p.then((s) => s.conn.close(), () => undefined)));
    },

    async forward(api, headers, place, port, log) {
      const { stream, protocol, canHalfClose } = await open(api, headers, place, port, log);
      const key = `${place.namespace}/${place.pod}:${port}`;
      try {
        await new Promise<void>((resolve, reject) => {
          let done = false;
          const settle = (err?: Error) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            if (err) return reject(err);
            remember(key);
            resolve();
          };
          stream.signals = {
            onError: (text) => settle(forwardError(place, port, text)),
            onData: () => settle(),
            onClose: () => settle(forwardClosedEarly(place, port)),
          };
          const timer = setTimeout(() => settle(), knownOpen.has(key) ? 0 : confirmMs);
        });
      } catch (err) {
        knownOpen.delete(key);
        stream.destroy();
        throw err;
      }
      // Later words of the runtime (a refusal after all, a reset) go to the log.
      stream.signals = {
        onError: (text) => log.warn({ pod: place.pod, port, runtime: text }, 'port-forward error from the runtime'),
        onData: () => undefined,
        onClose: () => undefined,
      };
      return { stream, place, protocol, canHalfClose };
    },
  };
}

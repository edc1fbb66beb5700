/**
 * Port-forward over SPDY/3.1, as client-go's tools/portforward speaks it, on the channel layer's
 * SPDY connection (channel/spdy/connection.ts): per TCP connection an `error` stream (which we
 * half-close at once: we never write on it) then a `data` stream, both with the headers
 * `streamType`, `port` and `requestID`; many connections share one upgraded socket; FIN on
 * the data stream is TCP's half-close, both ways.
 *
 * The socket comes either from a plain `Upgrade: SPDY/3.1` (X-Stream-Protocol-Version
 * portforward.k8s.io), or from a WebSocket whose subprotocol is `SPDY/3.1+portforward.k8s.io`
 * (KEP-4006, what kubectl 1.31+ tries first): there every binary message carries a slice of the
 * SPDY byte stream, which ws's createWebSocketStream turns back into a byte stream.
 */
import { Duplex } from 'node:stream';
import { createWebSocketStream } from 'ws';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { SpdyClientConnection, type SpdyStream } from '../channel/spdy/connection.ts';
import { upgradeSpdy, upgradeWebSocket } from '../channel/upgrade.ts';
import { refusedForwardUpgrade, type ForwardPlace } from './portforward-errors.ts';
import type { ForwardSignals } from './websocket-portforward.ts';

export const PORTFORWARD_PROTOCOL = 'portforward.k8s.io';
export const TUNNEL_PROTOCOL = `SPDY/3.1+${PORTFORWARD_PROTOCOL}`;
/** client-go's createStreamResponseTimeout. */
const STREAM_REPLY_TIMEOUT_MS = 30_000;

export type SpdyVia = 'websocket' | 'spdy';

export function portForwardPath(place: ForwardPlace): string {
  return `/api/v1/namespaces/${encodeURIComponent(place.namespace)}/pods/${encodeURIComponent(place.pod)}/portforward`;
}

/** The channel layer's upgrade: plain SPDY, or a WebSocket carrying SPDY (KEP-4006) as a byte
 *  stream. A refused protocol is marked (isProtocolRefusal) so the caller tries the next one. */
async function upgrade(api: KubeApiClient, headers: RequestHeaders, place: ForwardPlace, via: SpdyVia): Promise<{ socket: Duplex; head: Buffer }> {
  const req = {
    path: portForwardPath(place),
    what: 'port-forward',
    refused: (httpStatus: number, body: Buffer) => refusedForwardUpgrade(api, place, 0, httpStatus, body),
  };
  if (via === 'spdy') return upgradeSpdy(api, headers, { ...req, protocols: [PORTFORWARD_PROTOCOL] });
  return upgradeWebSocket(api, headers, { ...req, protocols: [TUNNEL_PROTOCOL], rawProtocol: true, closedEarly: 'connect-failed' }, (ws) => {
    ws.on('error', () => undefined);
    return { socket: createWebSocketStream(ws), head: Buffer.alloc(0) };
  });
}

/** One forwarded connection: the data stream as a Duplex; the error stream's text as signals. */
export class SpdyForwardStream extends Duplex {
  signals: ForwardSignals | null = null;
  private errorText = '';

  constructor(
    private readonly session: SpdyForwardSession,
    private readonly data: SpdyStream,
    error: SpdyStream,
  ) {
    super({ allowHalfOpen: true });
    data.listen({
      data: (payload) => {
        // A forward already closed on our side drops what is still in flight: pausing the
        // shared connection for a stream nobody reads would stall every other forward on it.
        if (this.destroyed || this.readableEnded) return;
        this.signals?.onData();
        if (!this.push(payload)) session.conn.pause();
      },
      end: () => {
        this.signals?.onClose();
        if (!this.destroyed) this.push(null);
      },
    });
    error.listen({
      data: (payload) => {
        this.errorText += payload.toString('utf8');
        this.signals?.onError(this.errorText);
      },
      end: () => undefined,
    });
  }

  override _read(): void {
    this.session.conn.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.session.conn.write(this.data, chunk, false, callback);
  }

  override _final(callback: () => void): void {
    // FIN on the data stream: the pod's connection sees end-of-input, and may still answer.
    this.session.conn.write(this.data, Buffer.alloc(0), true, () => callback());
  }

  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    if (!this.data.localFin) this.session.conn.write(this.data, Buffer.alloc(0), true, () => undefined);
    this.session.release();
    callback(err);
  }
}

/** One upgraded connection to one pod, shared by the forwards of one identity. */
export class SpdyForwardSession {
  private nextRequestId = 0;
  private live = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  private constructor(
    readonly conn: SpdyClientConnection,
    readonly via: SpdyVia,
    private readonly onGone: () => void,
  ) {
    conn.attach({ heard: () => undefined, error: () => undefined, closed: () => onGone() });
  }

  static async open(api: KubeApiClient, headers: RequestHeaders, place: ForwardPlace, via: SpdyVia, onGone: () => void): Promise<SpdyForwardSession> {
    const { socket, head } = await upgrade(api, headers, place, via);
    return new SpdyForwardSession(new SpdyClientConnection(socket, head), via, onGone);
  }

  get isOpen(): boolean {
    return this.conn.isOpen;
  }

  get description(): string {
    return this.via === 'websocket' ? `SPDY/3.1 in WebSocket (${TUNNEL_PROTOCOL})` : `SPDY/3.1 (${PORTFORWARD_PROTOCOL})`;
  }

  /** client-go's handleConnection: error stream (closed for writing at once), then data stream. */
  async connect(port: number): Promise<SpdyForwardStream> {
    const requestId = String(this.nextRequestId++);
    this.live++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    try {
      const headers = (type: string): Array<[string, string[]]> => [
        ['streamtype', [type]],
        ['port', [String(port)]],
        ['requestid', [requestId]],
      ];
      const error = await this.conn.openStream('error', headers('error'), STREAM_REPLY_TIMEOUT_MS);
      this.conn.write(error, Buffer.alloc(0), true, () => undefined);
      const data = await this.conn.openStream('data', headers('data'), STREAM_REPLY_TIMEOUT_MS);
      return new SpdyForwardStream(this, data, error);
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** A forward ended; the connection closes once none is left (after a short linger, so a
   *  client that opens connections one after another does not upgrade each time). */
  release(): void {
    this.live--;
    if (this.live > 0 || this.idleTimer) return;
    this.idleTimer = setTimeout(() => {
      if (this.live === 0) {
        this.onGone();
        this.conn.close();
      }
    }, 5_000);
    this.idleTimer.unref();
  }
}

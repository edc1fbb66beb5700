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
import type { ClientRequest } from 'node:http';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import WebSocket, { createWebSocketStream } from 'ws';
import { BridgeError } from '../../../errors.ts';
import { connectTimeout, networkFailure } from '../api/api-errors.ts';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { readBody } from '../channel/exec-request.ts';
import { SpdyClientConnection, type SpdyStream } from '../channel/spdy/connection.ts';
import { refusedForward, type ForwardPlace } from './portforward-errors.ts';
import type { ForwardSignals } from './websocket-portforward.ts';

export const PORTFORWARD_PROTOCOL = 'portforward.k8s.io';
export const TUNNEL_PROTOCOL = `SPDY/3.1+${PORTFORWARD_PROTOCOL}`;
/** client-go's createStreamResponseTimeout. */
const STREAM_REPLY_TIMEOUT_MS = 30_000;

export type SpdyVia = 'websocket' | 'spdy';

/** Marks a refusal of the protocol (the next one may work) rather than of the forward. */
export class ProtocolRefused extends BridgeError {}

export function portForwardPath(place: ForwardPlace): string {
  return `/api/v1/namespaces/${encodeURIComponent(place.namespace)}/pods/${encodeURIComponent(place.pod)}/portforward`;
}

/** Refusals that speak of the protocol, not of the pod or RBAC. */
function protocolRefusal(code: number, body: Buffer): boolean {
  if (code === 400 || code === 405 || code === 426) return true;
  if (code === 403) return body.length === 0 || /unable to negotiate protocol|not supported/i.test(body.toString('utf8'));
  return code >= 200 && code < 400;
}

/** Upgrades one HTTPS connection to SPDY for port-forward; resolves with the raw socket. */
async function upgradeSpdy(api: KubeApiClient, headers: RequestHeaders, place: ForwardPlace): Promise<{ socket: Duplex; head: Buffer }> {
  const opts = await api.connectionOptions(headers);
  const url = api.url(portForwardPath(place));
  const request = url.protocol === 'http:' ? http.request : https.request;
  return new Promise((resolve, reject) => {
    let connected = false;
    let settled = false;
    const fail = (err: BridgeError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      r.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(connectTimeout(api, api.connectTimeoutMs, connected)), api.connectTimeoutMs);
    const r = request(url, {
      ...opts,
      method: 'POST',
      headers: { ...opts.headers, Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': PORTFORWARD_PROTOCOL, 'Content-Length': '0' },
    });
    r.on('socket', (socket: Socket) => {
      if (!socket.connecting) connected = true;
      else socket.once('connect', () => (connected = true));
    });
    r.on('error', (err) => fail(networkFailure(err, api)));
    r.on('response', (res) => {
      const code = res.statusCode ?? 0;
      readBody(res).then(
        (body) => {
          const err = refusedForward(api, place, 0, code, body);
          fail(protocolRefusal(code, body) ? new ProtocolRefused(err.code, err.message, { detail: { ...err.detail } }) : err);
        },
        (err: unknown) => fail(networkFailure(err, api)),
      );
    });
    r.on('upgrade', (res, socket: Duplex, head: Buffer) => {
      const chosen = String(res.headers['x-stream-protocol-version'] ?? '');
      if (settled) return void socket.destroy();
      if (chosen !== PORTFORWARD_PROTOCOL) {
        socket.destroy();
        return fail(new ProtocolRefused('unsupported', `the Kubernetes API server at ${api.server} chose port-forward protocol "${chosen}" over SPDY`));
      }
      settled = true;
      clearTimeout(timer);
      (socket as Socket).setNoDelay?.(true);
      resolve({ socket, head });
    });
    r.end();
  });
}

/** A WebSocket carrying SPDY (KEP-4006); resolves with it as a byte stream. */
async function upgradeTunnel(api: KubeApiClient, headers: RequestHeaders, place: ForwardPlace): Promise<{ socket: Duplex; head: Buffer }> {
  const conn = await api.connectionOptions(headers);
  const url = api.url(portForwardPath(place));
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  let connected = false;
  const options = {
    ...conn,
    handshakeTimeout: api.connectTimeoutMs,
    perMessageDeflate: false,
    followRedirects: false,
    // ws only takes RFC 6455 tokens as subprotocols and "SPDY/3.1+portforward.k8s.io" has a '/'
    // (Go's gorilla/websocket does not check): we send the header ourselves and check the
    // server's choice here, before ws, which would refuse an answer to a protocol it did not send.
    headers: { ...conn.headers, 'Sec-WebSocket-Protocol': TUNNEL_PROTOCOL },
    finishRequest: (request: ClientRequest) => {
      request.on('socket', (socket: Socket) => {
        if (!socket.connecting) connected = true;
        else socket.once('connect', () => (connected = true));
      });
      request.prependListener('upgrade', (res) => {
        chosen = String(res.headers['sec-websocket-protocol'] ?? '');
        delete res.headers['sec-websocket-protocol'];
      });
      request.end();
    },
  } as WebSocket.ClientOptions;
  let chosen = '';
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [], options);
    let settled = false;
    const fail = (err: BridgeError) => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(err);
    };
    ws.on('unexpected-response', (_req, res) => {
      const code = res.statusCode ?? 0;
      readBody(res).then(
        (body) => {
          const err = refusedForward(api, place, 0, code, body);
          fail(protocolRefusal(code, body) ? new ProtocolRefused(err.code, err.message, { detail: { ...err.detail } }) : err);
        },
        (err: unknown) => fail(networkFailure(err, api)),
      );
    });
    ws.on('error', (err) => {
      if (err.message === 'Opening handshake has timed out') return fail(connectTimeout(api, api.connectTimeoutMs, connected));
      if (/subprotocol/i.test(err.message)) return fail(new ProtocolRefused('unsupported', `the Kubernetes API server at ${api.server} does not tunnel SPDY in WebSocket (${err.message})`));
      fail(networkFailure(err, api));
    });
    ws.on('open', () => {
      if (settled) return;
      if (chosen !== TUNNEL_PROTOCOL) {
        return fail(new ProtocolRefused('unsupported', `the Kubernetes API server at ${api.server} does not tunnel SPDY in WebSocket (it answered subprotocol "${chosen}")`));
      }
      settled = true;
      ws.removeAllListeners('error');
      ws.removeAllListeners('unexpected-response');
      ws.on('error', () => undefined);
      resolve({ socket: createWebSocketStream(ws), head: Buffer.alloc(0) });
    });
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
    const { socket, head } = via === 'websocket' ? await upgradeTunnel(api, headers, place) : await upgradeSpdy(api, headers, place);
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

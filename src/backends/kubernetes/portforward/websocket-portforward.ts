/**
 * One forwarded TCP connection over plain WebSocket (`v4.channel.k8s.io`, the kubelet's
 * cri/streaming/portforward/websocket.go): `GET .../portforward?ports=P`, data channel 0 and
 * error channel 1, each opened by the server with the port as uint16 little-endian. One
 * WebSocket per TCP connection; no half-close (ending our side is a no-op until the pod or the
 * client closes). Backpressure: reads pause the socket (TCP holds the API server); a write
 * completes when ws handed the frame to the socket.
 */
import type { ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { BridgeError } from '../../../errors.ts';
import { connectTimeout, networkFailure } from '../api/api-errors.ts';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { readBody } from '../channel/exec-request.ts';
import { refusedForward, type ForwardPlace } from './portforward-errors.ts';

export const PORTFORWARD_V4 = 'v4.channel.k8s.io';
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Incoming events before the stream is confirmed: data (already pushed), error text, close. */
export interface ForwardSignals {
  onError(text: string): void;
  onData(): void;
  onClose(): void;
}

export class WebSocketForwardStream extends Duplex {
  private prefixSeen = [false, false];
  private errorText = '';
  signals: ForwardSignals | null = null;

  constructor(private readonly ws: WebSocket) {
    super({ allowHalfOpen: true });
    ws.on('message', (data: Buffer) => {
      const frame = Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer);
      if (frame.length < 1) return;
      const channel = frame[0] as number;
      if (channel > 1) return;
      let payload = frame.subarray(1);
      // The first frame of each channel opens it with the port number.
      if (!this.prefixSeen[channel]) {
        this.prefixSeen[channel] = true;
        payload = payload.subarray(2);
      }
      if (payload.length === 0) return;
      if (channel === 1) {
        this.errorText += payload.toString('utf8');
        this.signals?.onError(this.errorText);
        return;
      }
      this.signals?.onData();
      if (!this.push(payload) && !this.destroyed) ws.pause();
    });
    ws.on('close', () => {
      this.signals?.onClose();
      this.push(null);
    });
    ws.on('error', (err) => this.destroy(err));
  }

  /** What the runtime wrote on the error channel so far (for the log once running). */
  get runtimeError(): string {
    return this.errorText;
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    const frame = Buffer.allocUnsafe(chunk.length + 1);
    frame[0] = 0;
    chunk.copy(frame, 1);
    this.ws.send(frame, { binary: true }, (err) => callback(err ?? null));
  }

  override _final(callback: () => void): void {
    // v4 has no half-close: the pod keeps its side open until it or the client closes.
    callback();
  }

  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    if (this.ws.readyState === this.ws.OPEN) {
      // Reading again: paused by backpressure, the socket would never read the peer's answering
      // close frame, and ws would hold the connection open for its 30 s close timeout.
      this.ws.resume();
      this.ws.close(1000);
    } else this.ws.terminate();
    callback(err);
  }
}

export async function openWebSocketForward(api: KubeApiClient, headers: RequestHeaders, place: ForwardPlace, port: number): Promise<WebSocketForwardStream> {
  const conn = await api.connectionOptions(headers);
  const path = `/api/v1/namespaces/${encodeURIComponent(place.namespace)}/pods/${encodeURIComponent(place.pod)}/portforward`;
  const url = api.url(path, new URLSearchParams({ ports: String(port) }));
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  let connected = false;
  const options = {
    ...conn,
    handshakeTimeout: api.connectTimeoutMs,
    perMessageDeflate: false,
    followRedirects: false,
    maxPayload: MAX_FRAME_BYTES,
    finishRequest: (request: ClientRequest) => {
      request.on('socket', (socket: Socket) => {
        if (!socket.connecting) connected = true;
        else socket.once('connect', () => (connected = true));
      });
      request.end();
    },
  } as WebSocket.ClientOptions;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [PORTFORWARD_V4], options);
    let settled = false;
    const fail = (err: BridgeError) => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(err);
    };
    ws.on('unexpected-response', (_request, res) => {
      readBody(res).then(
        (body) => fail(refusedForward(api, place, port, res.statusCode ?? 0, body)),
        (err: unknown) => fail(networkFailure(err, api)),
      );
    });
    ws.on('error', (err) => {
      if (err.message === 'Opening handshake has timed out') return fail(connectTimeout(api, api.connectTimeoutMs, connected));
      fail(networkFailure(err, api));
    });
    ws.on('close', () => fail(new BridgeError('connect-failed', `the Kubernetes API server at ${api.server} closed the port-forward connection before it opened`)));
    ws.on('open', () => {
      if (settled) return;
      settled = true;
      ws.removeAllListeners();
      resolve(new WebSocketForwardStream(ws));
    });
  });
}

/**
 * One forwarded TCP connection over plain WebSocket (`v4.channel.k8s.io`, the kubelet's
 * cri/streaming/portforward/websocket.go): `GET .../portforward?ports=P`, data channel 0 and
 * error channel 1, each opened by the server with the port as uint16 little-endian. One
 * WebSocket per TCP connection; no half-close (ending our side is a no-op until the pod or the
 * client closes). Backpressure: reads pause the socket (TCP holds the API server); a write
 * completes when ws handed the frame to the socket.
 */
import { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { upgradeWebSocket } from '../channel/upgrade.ts';
import { refusedForwardUpgrade, type ForwardPlace } from './portforward-errors.ts';
import { portForwardPath } from './spdy-portforward.ts';

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

export function openWebSocketForward(api: KubeApiClient, headers: RequestHeaders, place: ForwardPlace, port: number): Promise<WebSocketForwardStream> {
  return upgradeWebSocket(
    api,
    headers,
    {
      path: portForwardPath(place),
      query: new URLSearchParams({ ports: String(port) }),
      protocols: [PORTFORWARD_V4],
      what: 'port-forward',
      refused: (httpStatus, body) => refusedForwardUpgrade(api, place, port, httpStatus, body),
      closedEarly: 'connect-failed',
      maxPayload: MAX_FRAME_BYTES,
    },
    (ws) => new WebSocketForwardStream(ws),
  );
}

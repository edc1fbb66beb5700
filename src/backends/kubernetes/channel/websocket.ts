/**
 * The WebSocket channel transport (v5.channel.k8s.io, v4.channel.k8s.io): each binary message
 * is a channel byte and a payload. Backpressure in: `pause()` pauses the socket, so TCP holds the
 * API server. Backpressure out: a write's callback runs when ws handed the frame to the socket.
 */
import type WebSocket from 'ws';
import { Channel, decodeFrame, encodeClose, encodeFrame, encodeResize, type ProtocolVersion } from './websocket-frames.ts';
import { EventRelay, type ChannelTransport, type TransportEvents } from '../../exec/transport.ts';

export class WebSocketTransport implements ChannelTransport {
  description: string;
  readonly subprotocol: string;
  readonly canCloseStdin: boolean;

  private readonly relay = new EventRelay<TransportEvents>();

  constructor(
    private readonly ws: WebSocket,
    readonly version: ProtocolVersion,
  ) {
    this.subprotocol = `${version}.channel.k8s.io`;
    this.description = `${this.subprotocol} over WebSocket`;
    this.canCloseStdin = version === 'v5';
    ws.on('message', (data) => {
      this.emit((e) => e.heard());
      const frame = decodeFrame(toBuffer(data));
      if (frame === null) return;
      switch (frame.channel) {
        case Channel.stdout:
          return this.emit((e) => e.data('stdout', frame.payload));
        case Channel.stderr:
          return this.emit((e) => e.data('stderr', frame.payload));
        case Channel.status:
          return this.emit((e) => e.data('status', frame.payload));
      }
      // Other channels are the client's to write; a server has nothing to say on them.
    });
    ws.on('pong', () => this.emit((e) => e.heard()));
    ws.on('error', (err) => this.emit((e) => e.error(err)));
    ws.on('close', (code, reason) => this.emit((e) => e.closed(code, reason.toString('utf8'))));
  }

  /** Adds why this protocol was chosen to the description (the log and the user's notice). */
  note(why: string): void {
    this.description = `${this.subprotocol} over WebSocket (${why})`;
  }

  get isOpen(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  get isPaused(): boolean {
    return this.ws.isPaused;
  }

  attach(events: TransportEvents): void {
    this.relay.attach(events);
  }

  private emit(deliver: (e: TransportEvents) => void): void {
    this.relay.emit(deliver);
  }

  writeStdin(chunk: Buffer, callback: (err?: Error | null) => void): void {
    this.ws.send(encodeFrame(Channel.stdin, chunk), { binary: true }, callback);
  }

  endStdin(callback: () => void): void {
    if (!this.canCloseStdin) return callback();
    this.ws.send(encodeClose(Channel.stdin), { binary: true }, () => callback());
  }

  writeResize(cols: number, rows: number, callback: () => void): void {
    this.ws.send(encodeResize(cols, rows), { binary: true }, () => callback());
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
  }

  ping(): void {
    this.ws.ping();
  }

  close(reason: string): void {
    if (this.isOpen) this.ws.close(1000, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * The SPDY/3.1 channel transport: one SPDY stream per channel, named by its `streamType` header
 * (k8s.io/api/core/v1: error, stdin, stdout, stderr, resize). stdin EOF is a FIN on the stdin
 * stream, which is why kubectl falls back to SPDY where WebSocket stops at v4. Resizes are JSON
 * values, one per line, as client-go's json.Encoder writes them.
 */
import type { SpdyClientConnection, SpdyStream } from './spdy/connection.ts';
import { EventRelay, type ChannelTransport, type IncomingStream, type TransportEvents } from '../../exec/transport.ts';

export const StreamType = {
  error: 'error',
  stdin: 'stdin',
  stdout: 'stdout',
  stderr: 'stderr',
  resize: 'resize',
} as const;

export interface SpdyExecStreams {
  error: SpdyStream;
  stdin: SpdyStream | null;
  stdout: SpdyStream | null;
  stderr: SpdyStream | null;
  resize: SpdyStream | null;
}

export class SpdyTransport implements ChannelTransport {
  readonly description: string;
  readonly canCloseStdin = true;
  private readonly relay = new EventRelay<TransportEvents>();

  constructor(
    private readonly conn: SpdyClientConnection,
    private readonly streams: SpdyExecStreams,
    readonly subprotocol: string,
  ) {
    this.description = `${subprotocol} over SPDY/3.1`;
    const route = (s: SpdyStream | null, to: IncomingStream) => {
      if (s === null) return;
      s.listen({ data: (payload) => this.emit((e) => e.data(to, payload)), end: () => {} });
    };
    route(streams.stdout, 'stdout');
    route(streams.stderr, 'stderr');
    route(streams.error, 'status');
    conn.attach({
      heard: () => this.emit((e) => e.heard()),
      error: (err) => this.emit((e) => e.error(err)),
      closed: (code, reason) => this.emit((e) => e.closed(code, reason)),
    });
  }

  get isOpen(): boolean {
    return this.conn.isOpen;
  }

  get isPaused(): boolean {
    return this.conn.isPaused;
  }

  attach(events: TransportEvents): void {
    this.relay.attach(events);
  }

  private emit(deliver: (e: TransportEvents) => void): void {
    this.relay.emit(deliver);
  }

  writeStdin(chunk: Buffer, callback: (err?: Error | null) => void): void {
    if (this.streams.stdin === null) return callback();
    this.conn.write(this.streams.stdin, chunk, false, callback);
  }

  endStdin(callback: () => void): void {
    if (this.streams.stdin === null || this.streams.stdin.localFin) return callback();
    this.conn.write(this.streams.stdin, Buffer.alloc(0), true, () => callback());
  }

  writeResize(cols: number, rows: number, callback: () => void): void {
    if (this.streams.resize === null || this.streams.resize.localFin) return callback();
    // json.Encoder: the Go field names, then a newline.
    this.conn.write(this.streams.resize, Buffer.from(`${JSON.stringify({ Width: cols, Height: rows })}\n`), false, () => callback());
  }

  pause(): void {
    this.conn.pause();
  }

  resume(): void {
    this.conn.resume();
  }

  ping(): void {
    this.conn.ping();
  }

  close(_reason: string): void {
    this.conn.close();
  }

  terminate(): void {
    this.conn.terminate();
  }
}

/**
 * What an exec needs from one connection, whatever its framing: one implementation per protocol
 * (kubernetes/channel/websocket.ts: v5/v4 channel bytes in WebSocket messages;
 * kubernetes/channel/spdy-transport.ts: one SPDY/3.1 stream per channel; docker/exec-transport.ts:
 * the Engine's hijacked socket). The exec process (exec-process.ts) holds everything
 * protocol-neutral on top: the PID report gate, the resize coalescer, the Status, the lifecycle
 * and when to stop reading.
 *
 * Flow control is the transport's own business below this line: `pause()` means "deliver
 * nothing more until resume()", and the transport makes the peer stop sending (TCP for
 * WebSocket; for SPDY, TCP too, since Kubernetes' spdystream keeps no windows).
 */

/** The incoming byte streams of an exec. `status` is channel 3 / the error stream. */
export type IncomingStream = 'stdout' | 'stderr' | 'status';

export interface TransportEvents {
  /** Bytes for one stream. Empty payloads are readiness signals (WebSocket) and may come. */
  data(stream: IncomingStream, payload: Buffer): void;
  /** The peer showed it is alive (any frame, a pong): resets the keepalive clock. */
  heard(): void;
  /** A socket error; `closed` follows. */
  error(err: Error): void;
  /** The connection is gone; nothing more arrives. `code`/`reason` are the WebSocket close
   *  code and reason, or what the SPDY connection saw (GOAWAY status, socket end). */
  closed(code: number, reason: string): void;
}

export interface ChannelTransport {
  /** What was negotiated, for the log and messages: `v5.channel.k8s.io over WebSocket`. */
  readonly description: string;
  /** The negotiated subprotocol (`v4.channel.k8s.io`, ...). */
  readonly subprotocol: string;
  /** Whether stdin EOF reaches the process (v5 WebSocket's CLOSE, SPDY's FIN). */
  readonly canCloseStdin: boolean;
  readonly isOpen: boolean;
  /** True while we stopped reading (backpressure): silence then is ours, not the peer's. */
  readonly isPaused: boolean;
  /** Events go to `events` from now on; called once, synchronously after the connect. */
  attach(events: TransportEvents): void;
  /** `callback` runs once the bytes are handed to the socket (or dropped because it closed). */
  writeStdin(chunk: Buffer, callback: (err?: Error | null) => void): void;
  /** Only when canCloseStdin; `callback` runs once the EOF is handed to the socket. */
  endStdin(callback: () => void): void;
  writeResize(cols: number, rows: number, callback: () => void): void;
  pause(): void;
  resume(): void;
  ping(): void;
  /** A clean close (WebSocket close frame; SPDY resets and GOAWAY). */
  close(reason: string): void;
  /** Cut the socket now. */
  terminate(): void;
}

/** Hands events to a listener that attaches a moment after they began (after a handshake, or
 *  after a SYN_REPLY that shared a socket read with the first data): none are lost meanwhile. */
export class EventRelay<E> {
  private target: E | null = null;
  private readonly early: Array<(e: E) => void> = [];

  attach(target: E): void {
    this.target = target;
    for (const deliver of this.early.splice(0)) deliver(target);
  }

  emit(deliver: (e: E) => void): void {
    if (this.target !== null) deliver(this.target);
    else this.early.push(deliver);
  }
}

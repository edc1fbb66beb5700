/**
 * The client side of one SPDY/3.1 connection over an upgraded socket, as client-go uses
 * spdystream: streams we open (odd ids) and wait a SYN_REPLY for, data with FIN, RST_STREAM,
 * PING both ways, GOAWAY, and header compression contexts for the connection's whole life.
 *
 * Flow control. Kubernetes' spdystream keeps no windows: it never sends WINDOW_UPDATE or
 * SETTINGS and ignores them; its backpressure is TCP (a frame it cannot hand to a reader stops its
 * read loop). So:
 * - in: `pause()` stops reading the socket (TCP then holds the peer) and stops parsing what is
 *   buffered; bytes we hand on count as consumed and are acknowledged with WINDOW_UPDATE, which a
 *   peer that does keep windows needs and spdystream ignores. Memory: one socket read.
 * - out: we respect the peer's send window only once it shows it keeps one (a WINDOW_UPDATE or
 *   a SETTINGS with the initial window); against spdystream, waiting for a window that never
 *   opens would stall stdin after 64 KiB. Writes complete when the socket took the bytes.
 */
import type { Duplex } from 'node:stream';
import {
  DEFAULT_INITIAL_WINDOW,
  FLAG_FIN,
  FrameParser,
  RstStatus,
  SETTINGS_INITIAL_WINDOW_SIZE,
  SpdyProtocolError,
  encodeData,
  encodeGoAway,
  encodePing,
  encodeRstStream,
  encodeSynStream,
  encodeWindowUpdate,
  type Frame,
  type HeaderList,
} from './frames.ts';
import { HeaderCompressor, HeaderDecompressor } from './headers.ts';
import { EventRelay } from '../../../exec/transport.ts';

/** client-go writes through io.Copy's 32 KiB buffer: one data frame per write. */
const MAX_DATA_FRAME = 32 * 1024;
/** Acknowledge consumed bytes once this many are unacknowledged on a stream. */
const WINDOW_UPDATE_THRESHOLD = DEFAULT_INITIAL_WINDOW / 2;
/** Frames we accept: the 24-bit maximum would let a peer make us hold 16 MiB per frame. */
const MAX_INCOMING_DATA_FRAME = 1024 * 1024;

export interface StreamHandlers {
  data(payload: Buffer): void;
  /** The peer closed its half (FIN) or reset the stream; nothing more arrives. */
  end(reset: boolean): void;
}

interface PendingWrite {
  data: Buffer;
  fin: boolean;
  callback: (err?: Error | null) => void;
}

export class SpdyStream {
  /** Bytes the peer still lets us send (when it keeps windows). */
  sendWindow: number;
  /** Received and handed on, not yet acknowledged with WINDOW_UPDATE. */
  unacknowledged = 0;
  localFin = false;
  remoteEnded = false;
  replied = false;
  readonly queue: PendingWrite[] = [];
  /** The reply and the first data can share a socket read: nothing is lost before listen(). */
  private readonly relay = new EventRelay<StreamHandlers>();

  constructor(
    readonly id: number,
    readonly type: string,
    initialWindow: number,
  ) {
    this.sendWindow = initialWindow;
  }

  listen(handlers: StreamHandlers): void {
    this.relay.attach(handlers);
  }

  deliver(fn: (h: StreamHandlers) => void): void {
    this.relay.emit(fn);
  }
}

export interface ConnectionEvents {
  /** Any frame arrived (or a pong): the peer is alive. */
  heard(): void;
  error(err: Error): void;
  closed(code: number, reason: string): void;
}

export class SpdyClientConnection {
  private readonly parser = new FrameParser(MAX_INCOMING_DATA_FRAME);
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly replyWaiters = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private nextStreamId = 1;
  private nextPingId = 1;
  private initialWindow = DEFAULT_INITIAL_WINDOW;
  private peerKeepsWindows = false;
  private paused = false;
  private ended = false;
  /** The socket closed; what the parser still holds is parsed (after a resume) before we end. */
  private socketClosed = false;
  /** A protocol error ended the connection: nothing more is parsed. */
  private broken = false;
  private goAwayReason: string | null = null;
  private readonly relay = new EventRelay<ConnectionEvents>();

  constructor(private readonly socket: Duplex, head: Buffer) {
    socket.on('data', (chunk: Buffer) => {
      this.parser.push(chunk);
      this.drain();
    });
    socket.on('error', (err) => this.emit((e) => e.error(err)));
    socket.on('close', () => this.onSocketClosed());
    // The peer may write while the socket is open but nobody reads: never stall on our side.
    socket.on('end', () => socket.end());
    if (head.length > 0) {
      this.parser.push(head);
      queueMicrotask(() => this.drain());
    }
  }

  get isOpen(): boolean {
    return !this.ended && !this.socket.destroyed;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Events before this call are kept and delivered here. */
  attach(events: ConnectionEvents): void {
    this.relay.attach(events);
  }

  /** Sends SYN_STREAM and resolves once the peer's SYN_REPLY came (client-go waits for each
   *  before opening the next); rejects on RST_STREAM, on the connection's end, or after `timeoutMs`. */
  openStream(type: string, headers: HeaderList, timeoutMs: number): Promise<SpdyStream> {
    if (!this.isOpen) return Promise.reject(new Error('SPDY connection closed'));
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new SpdyStream(id, type, this.initialWindow);
    this.streams.set(id, stream);
    return new Promise<SpdyStream>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replyWaiters.delete(id);
        reject(new Error(`no SYN_REPLY for the ${type} stream within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      timer.unref();
      this.replyWaiters.set(id, {
        resolve: () => {
          clearTimeout(timer);
          resolve(stream);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.socket.write(encodeSynStream(id, this.compressor.compress(headers)));
    });
  }

  /** Writes data (split into frames), with FIN when `fin`; `callback` once the socket took it. */
  write(stream: SpdyStream, data: Buffer, fin: boolean, callback: (err?: Error | null) => void): void {
    if (stream.localFin || !this.isOpen) return callback(new Error('SPDY stream closed'));
    stream.queue.push({ data, fin, callback });
    if (fin) stream.localFin = true;
    this.flush(stream);
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    for (const s of this.streams.values()) this.acknowledge(s, 0);
    this.socket.resume();
    this.drain();
  }

  ping(): void {
    if (!this.isOpen) return;
    const id = this.nextPingId;
    // Client pings are odd (spdystream wraps them the same way).
    this.nextPingId = id > 0x7ffffffe ? id - 0x7ffffffe : id + 2;
    this.socket.write(encodePing(id));
  }

  /** What client-go's Connection.Close does: reset every stream we have not finished, GOAWAY,
   *  then close the socket once the frames are out. */
  close(): void {
    if (!this.isOpen) return;
    for (const s of this.streams.values()) {
      if (!s.localFin) this.socket.write(encodeRstStream(s.id, RstStatus.cancel));
      s.localFin = true;
      this.failQueue(s);
    }
    this.socket.write(encodeGoAway(0));
    this.socket.end();
  }

  terminate(): void {
    this.socket.destroy();
  }

  private emit(deliver: (e: ConnectionEvents) => void): void {
    this.relay.emit(deliver);
  }

  private drain(): void {
    while (!this.paused && !this.ended && !this.broken) {
      let frame: Frame | null;
      try {
        frame = this.parser.next();
        if (frame === null) {
          if (this.socketClosed) this.finishClose();
          return;
        }
        this.emit((e) => e.heard());
        this.handle(frame);
      } catch (err) {
        // The header contexts are shared by the whole connection: one bad frame ends it.
        this.goAwayReason = err instanceof SpdyProtocolError ? err.message : String(err);
        this.broken = true;
        this.emit((e) => e.error(err instanceof Error ? err : new Error(String(err))));
        if (!this.socket.destroyed) this.socket.end(encodeGoAway(0, 1));
        this.socket.destroy();
        if (this.socketClosed) this.finishClose();
        return;
      }
    }
  }

  private handle(frame: Frame): void {
    switch (frame.type) {
      case 'data': {
        const s = this.streams.get(frame.streamId);
        // spdystream drops data for streams it does not know or that were not replied to.
        if (s === undefined || !s.replied || s.remoteEnded) return;
        if (frame.data.length > 0) {
          const data = frame.data;
          s.deliver((h) => h.data(data));
          this.acknowledge(s, frame.data.length);
        }
        if ((frame.flags & FLAG_FIN) !== 0) this.remoteEnd(s, false);
        return;
      }
      case 'synReply': {
        // Decompress even when unused: the zlib context must see every block.
        this.decompressor.decompress(frame.headerBlock);
        const s = this.streams.get(frame.streamId);
        if (s === undefined || s.replied) return;
        s.replied = true;
        this.replyWaiters.get(s.id)?.resolve();
        this.replyWaiters.delete(s.id);
        if ((frame.flags & FLAG_FIN) !== 0) this.remoteEnd(s, false);
        return;
      }
      case 'headers': {
        this.decompressor.decompress(frame.headerBlock);
        const s = this.streams.get(frame.streamId);
        if (s !== undefined && s.replied && (frame.flags & FLAG_FIN) !== 0) this.remoteEnd(s, false);
        return;
      }
      case 'synStream':
        // The server opening streams to us is not part of exec: refuse, as nothing would read them.
        this.decompressor.decompress(frame.headerBlock);
        this.socket.write(encodeRstStream(frame.streamId, RstStatus.refusedStream));
        return;
      case 'rstStream': {
        const s = this.streams.get(frame.streamId);
        if (s === undefined) return;
        const waiter = this.replyWaiters.get(s.id);
        this.replyWaiters.delete(s.id);
        waiter?.reject(new Error(`the server reset the ${s.type} stream (status ${frame.status})`));
        s.localFin = true;
        this.failQueue(s);
        this.remoteEnd(s, true);
        return;
      }
      case 'settings':
        for (const e of frame.entries) {
          if (e.id !== SETTINGS_INITIAL_WINDOW_SIZE) continue;
          const delta = e.value - this.initialWindow;
          this.initialWindow = e.value;
          this.peerKeepsWindows = true;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            this.flush(s);
          }
        }
        return;
      case 'windowUpdate': {
        this.peerKeepsWindows = true;
        const s = this.streams.get(frame.streamId);
        if (s === undefined) return;
        s.sendWindow += frame.delta;
        this.flush(s);
        return;
      }
      case 'ping':
        // Even ids are the server's: echo them. An odd one is the answer to ours (heard above).
        if ((frame.id & 1) === 0) this.socket.write(encodePing(frame.id));
        return;
      case 'goAway':
        this.goAwayReason = frame.status === 0 ? 'the server ended the connection (GOAWAY)' : `the server ended the connection (GOAWAY status ${frame.status})`;
        return;
      case 'unknown':
        return;
    }
  }

  private remoteEnd(s: SpdyStream, reset: boolean): void {
    if (s.remoteEnded) return;
    s.remoteEnded = true;
    s.deliver((h) => h.end(reset));
  }

  private acknowledge(s: SpdyStream, bytes: number): void {
    s.unacknowledged += bytes;
    if (this.paused || s.remoteEnded || s.unacknowledged < WINDOW_UPDATE_THRESHOLD || !this.isOpen) return;
    this.socket.write(encodeWindowUpdate(s.id, s.unacknowledged));
    s.unacknowledged = 0;
  }

  private flush(s: SpdyStream): void {
    while (s.queue.length > 0 && this.isOpen) {
      const w = s.queue[0] as PendingWrite;
      // Bytes we may send now: everything, unless the peer keeps windows.
      const allowed = this.peerKeepsWindows ? Math.max(0, s.sendWindow) : Infinity;
      if (w.data.length > 0 && allowed === 0) return;
      const n = Math.min(w.data.length, MAX_DATA_FRAME, allowed);
      const piece = w.data.subarray(0, n);
      const last = n === w.data.length;
      s.sendWindow -= n;
      if (last) s.queue.shift();
      else w.data = w.data.subarray(n);
      const frame = encodeData(s.id, piece, last && w.fin ? FLAG_FIN : 0);
      if (last) this.socket.write(frame, (err) => w.callback(err ?? null));
      else this.socket.write(frame);
    }
  }

  private failQueue(s: SpdyStream): void {
    for (const w of s.queue.splice(0)) w.callback(new Error('SPDY stream closed'));
  }

  private onSocketClosed(): void {
    this.socketClosed = true;
    // The peer may have sent its last frames and closed before a slow reader let us parse them
    // all: they still belong to their streams. drain() ends the connection once it runs dry
    // (now, or after the resume that a paused reader owes us).
    if (this.broken) return this.finishClose();
    if (!this.paused) this.drain();
  }

  private finishClose(): void {
    if (this.ended) return;
    this.ended = true;
    const err = new Error(this.goAwayReason ?? 'the SPDY connection closed');
    for (const [id, waiter] of this.replyWaiters) {
      waiter.reject(err);
      this.replyWaiters.delete(id);
    }
    for (const s of this.streams.values()) {
      this.failQueue(s);
      this.remoteEnd(s, true);
    }
    const clean = this.goAwayReason !== null && this.goAwayReason.startsWith('the server ended the connection (GOAWAY)');
    this.emit((e) => e.closed(clean ? 1000 : 1006, this.goAwayReason ?? ''));
  }
}

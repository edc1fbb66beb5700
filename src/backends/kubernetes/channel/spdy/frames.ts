/**
 * SPDY/3.1 framing as Kubernetes speaks it (github.com/moby/spdystream's spdy/{types,read,write}.go):
 * pure encoders, and an incremental parser that turns socket chunks into frames. Header blocks are
 * compressed by headers.ts; this file only carries them.
 *
 * Control frame: |1|version(15)=3|type(16)|flags(8)|length(24)|payload
 * Data frame:    |0|stream id(31)|flags(8)|length(24)|data
 */

export const SPDY_VERSION = 3;

export const FrameType = {
  synStream: 1,
  synReply: 2,
  rstStream: 3,
  settings: 4,
  ping: 6,
  goAway: 7,
  headers: 8,
  windowUpdate: 9,
} as const;

/** FLAG_FIN on data, SYN_STREAM, SYN_REPLY and HEADERS frames: the sender's half is closed. */
export const FLAG_FIN = 0x01;
/** SYN_STREAM only: the receiver may not send on this stream. */
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  protocolError: 1,
  invalidStream: 2,
  refusedStream: 3,
  unsupportedVersion: 4,
  cancel: 5,
  internalError: 6,
  flowControlError: 7,
  streamInUse: 8,
  streamAlreadyClosed: 9,
  frameTooLarge: 11,
} as const;

export const GoAwayStatus = { ok: 0, protocolError: 1, internalError: 2 } as const;

/** SETTINGS id of the initial per-stream window. */
export const SETTINGS_INITIAL_WINDOW_SIZE = 7;
/** SPDY/3's initial stream window when no SETTINGS said otherwise. */
export const DEFAULT_INITIAL_WINDOW = 64 * 1024;
/** The largest payload a frame's 24-bit length can carry. */
export const MAX_FRAME_PAYLOAD = 0xffffff;

/** Header names (lower case) and their values; SPDY joins several values with NUL. */
export type HeaderList = ReadonlyArray<readonly [name: string, values: readonly string[]]>;

export type Frame =
  | { type: 'data'; streamId: number; flags: number; data: Buffer }
  | { type: 'synStream'; streamId: number; associatedTo: number; priority: number; slot: number; flags: number; headerBlock: Buffer }
  | { type: 'synReply'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'rstStream'; streamId: number; status: number }
  | { type: 'settings'; flags: number; entries: Array<{ flags: number; id: number; value: number }> }
  | { type: 'ping'; id: number }
  | { type: 'goAway'; lastGoodStreamId: number; status: number }
  | { type: 'headers'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'windowUpdate'; streamId: number; delta: number }
  /** A control frame type SPDY/3.1 does not define: skipped whole. */
  | { type: 'unknown'; frameType: number; flags: number; length: number };

export class SpdyProtocolError extends Error {}

function controlHeader(type: number, flags: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(8 + length);
  b.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  b.writeUInt16BE(type, 2);
  b.writeUInt32BE(((flags & 0xff) << 24) | length, 4);
  return b;
}

export function encodeSynStream(streamId: number, compressedHeaders: Buffer, flags = 0, priority = 0, associatedTo = 0): Buffer {
  const b = controlHeader(FrameType.synStream, flags, 10 + compressedHeaders.length);
  b.writeUInt32BE(streamId & 0x7fffffff, 8);
  b.writeUInt32BE(associatedTo & 0x7fffffff, 12);
  // spdystream writes Priority<<5 and then the slot byte.
  b[16] = (priority & 0x7) << 5;
  b[17] = 0;
  compressedHeaders.copy(b, 18);
  return b;
}

export function encodeSynReply(streamId: number, compressedHeaders: Buffer, flags = 0): Buffer {
  const b = controlHeader(FrameType.synReply, flags, 4 + compressedHeaders.length);
  b.writeUInt32BE(streamId & 0x7fffffff, 8);
  compressedHeaders.copy(b, 12);
  return b;
}

export function encodeHeaders(streamId: number, compressedHeaders: Buffer, flags = 0): Buffer {
  const b = controlHeader(FrameType.headers, flags, 4 + compressedHeaders.length);
  b.writeUInt32BE(streamId & 0x7fffffff, 8);
  compressedHeaders.copy(b, 12);
  return b;
}

export function encodeRstStream(streamId: number, status: number): Buffer {
  const b = controlHeader(FrameType.rstStream, 0, 8);
  b.writeUInt32BE(streamId & 0x7fffffff, 8);
  b.writeUInt32BE(status, 12);
  return b;
}

export function encodeSettings(entries: ReadonlyArray<{ flags?: number; id: number; value: number }>, flags = 0): Buffer {
  const b = controlHeader(FrameType.settings, flags, 4 + entries.length * 8);
  b.writeUInt32BE(entries.length, 8);
  entries.forEach((e, i) => {
    b.writeUInt32BE((((e.flags ?? 0) & 0xff) << 24) | (e.id & 0xffffff), 12 + i * 8);
    b.writeUInt32BE(e.value >>> 0, 16 + i * 8);
  });
  return b;
}

export function encodePing(id: number): Buffer {
  const b = controlHeader(FrameType.ping, 0, 4);
  b.writeUInt32BE(id >>> 0, 8);
  return b;
}

export function encodeGoAway(lastGoodStreamId: number, status: number = GoAwayStatus.ok): Buffer {
  const b = controlHeader(FrameType.goAway, 0, 8);
  b.writeUInt32BE(lastGoodStreamId & 0x7fffffff, 8);
  b.writeUInt32BE(status, 12);
  return b;
}

export function encodeWindowUpdate(streamId: number, delta: number): Buffer {
  const b = controlHeader(FrameType.windowUpdate, 0, 8);
  b.writeUInt32BE(streamId & 0x7fffffff, 8);
  b.writeUInt32BE(delta & 0x7fffffff, 12);
  return b;
}

export function encodeData(streamId: number, data: Uint8Array, flags = 0): Buffer {
  if (data.length > MAX_FRAME_PAYLOAD) throw new RangeError('SPDY data frame too large');
  const b = Buffer.allocUnsafe(8 + data.length);
  b.writeUInt32BE(streamId & 0x7fffffff, 0);
  b.writeUInt32BE(((flags & 0xff) << 24) | data.length, 4);
  b.set(data, 8);
  return b;
}

/**
 * Turns socket chunks into frames. Chunks are kept as a list and joined only once a whole frame
 * is there, so a large frame split over many reads costs one copy. `maxFrame` bounds what one
 * frame may make us hold; control frames are small, so they get their own tighter bound.
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(
    private readonly maxDataPayload = MAX_FRAME_PAYLOAD,
    private readonly maxControlPayload = 1024 * 1024,
  ) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next whole frame, or null when more bytes are needed. Throws SpdyProtocolError. */
  next(): Frame | null {
    if (this.buffered < 8) return null;
    const head = this.peek(8);
    const word = head.readUInt32BE(0);
    const flags = head[4] as number;
    const length = head.readUInt32BE(4) & 0xffffff;
    const control = (word & 0x80000000) !== 0;
    if (length > (control ? this.maxControlPayload : this.maxDataPayload)) {
      throw new SpdyProtocolError(`SPDY frame of ${length} bytes is larger than allowed`);
    }
    if (this.buffered < 8 + length) return null;
    const whole = this.take(8 + length);
    const p = whole.subarray(8);
    if (!control) {
      const streamId = word & 0x7fffffff;
      if (streamId === 0) throw new SpdyProtocolError('SPDY data frame on stream 0');
      return { type: 'data', streamId, flags, data: p };
    }
    const type = word & 0xffff;
    const need = (n: number) => {
      if (p.length < n) throw new SpdyProtocolError(`SPDY control frame type ${type} too short (${p.length} bytes)`);
    };
    switch (type) {
      case FrameType.synStream: {
        need(10);
        return {
          type: 'synStream',
          streamId: nonZero(p.readUInt32BE(0) & 0x7fffffff),
          associatedTo: p.readUInt32BE(4) & 0x7fffffff,
          priority: (p[8] as number) >> 5,
          slot: p[9] as number,
          flags,
          headerBlock: p.subarray(10),
        };
      }
      case FrameType.synReply:
        need(4);
        return { type: 'synReply', streamId: nonZero(p.readUInt32BE(0) & 0x7fffffff), flags, headerBlock: p.subarray(4) };
      case FrameType.headers:
        need(4);
        return { type: 'headers', streamId: nonZero(p.readUInt32BE(0) & 0x7fffffff), flags, headerBlock: p.subarray(4) };
      case FrameType.rstStream: {
        need(8);
        const status = p.readUInt32BE(4);
        if (status === 0) throw new SpdyProtocolError('SPDY RST_STREAM with status 0');
        return { type: 'rstStream', streamId: nonZero(p.readUInt32BE(0) & 0x7fffffff), status };
      }
      case FrameType.settings: {
        need(4);
        const n = p.readUInt32BE(0);
        if (p.length < 4 + n * 8) throw new SpdyProtocolError('SPDY SETTINGS frame shorter than its entries');
        const entries: Array<{ flags: number; id: number; value: number }> = [];
        for (let i = 0; i < n; i++) {
          const idWord = p.readUInt32BE(4 + i * 8);
          entries.push({ flags: idWord >>> 24, id: idWord & 0xffffff, value: p.readUInt32BE(8 + i * 8) });
        }
        return { type: 'settings', flags, entries };
      }
      case FrameType.ping: {
        need(4);
        const id = p.readUInt32BE(0);
        if (id === 0) throw new SpdyProtocolError('SPDY PING with id 0');
        return { type: 'ping', id };
      }
      case FrameType.goAway:
        if (length !== 8) throw new SpdyProtocolError('SPDY GOAWAY frame is not 8 bytes long');
        return { type: 'goAway', lastGoodStreamId: p.readUInt32BE(0) & 0x7fffffff, status: p.readUInt32BE(4) };
      case FrameType.windowUpdate:
        if (length !== 8) throw new SpdyProtocolError('SPDY WINDOW_UPDATE frame is not 8 bytes long');
        return { type: 'windowUpdate', streamId: p.readUInt32BE(0) & 0x7fffffff, delta: p.readUInt32BE(4) & 0x7fffffff };
      default:
        return { type: 'unknown', frameType: type, flags, length };
    }
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length >= n) return first.subarray(0, n);
    return Buffer.concat(this.chunks, Math.min(this.buffered, Math.max(n, 64))).subarray(0, n);
  }

  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0] as Buffer;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

function nonZero(streamId: number): number {
  if (streamId === 0) throw new SpdyProtocolError('SPDY frame on stream 0');
  return streamId;
}

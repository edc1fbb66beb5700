/**
 * SPDY/3 header blocks: the name/value block (spdystream's writeHeaderValueBlock and
 * parseHeaderValueBlock) and its zlib compression with SPDY's dictionary. One compression context
 * per direction lives as long as the connection: every block continues the same zlib stream and
 * ends with a sync flush, so the peer can decode it at once.
 *
 * pako, not node:zlib: Node's zlib runs a persistent stream only asynchronously (its *Sync helpers
 * close the context after one call), and frames must be decoded in order as they are parsed.
 */
import { Deflate, Inflate, Z_SYNC_FLUSH } from 'pako';
import { SPDY3_HEADER_DICTIONARY } from './dictionary.ts';
import { SpdyProtocolError, type HeaderList } from './frames.ts';

/** What one header block may inflate to: exec's blocks are a few dozen bytes. */
const MAX_HEADER_BLOCK = 64 * 1024;

/** |count(32)| then per header |name length(32)|name|value length(32)|values joined by NUL|. */
export function encodeHeaderBlock(headers: HeaderList): Buffer {
  const parts: Buffer[] = [u32(headers.length)];
  for (const [name, values] of headers) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(values.join('\0'), 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  let off = 0;
  const read = (n: number): Buffer => {
    if (off + n > block.length) throw new SpdyProtocolError('SPDY header block cut short');
    const b = block.subarray(off, off + n);
    off += n;
    return b;
  };
  const count = read(4).readUInt32BE(0);
  for (let i = 0; i < count; i++) {
    const name = read(read(4).readUInt32BE(0)).toString('utf8').toLowerCase();
    const value = read(read(4).readUInt32BE(0)).toString('utf8');
    const list = headers.get(name) ?? [];
    list.push(...value.split('\0'));
    headers.set(name, list);
  }
  return headers;
}

/** One direction's compressor: BestCompression (as spdystream), dictionary, sync flush per block. */
export class HeaderCompressor {
  private readonly deflate = new Deflate({ level: 9, dictionary: SPDY3_HEADER_DICTIONARY });

  compress(headers: HeaderList): Buffer {
    return this.compressRaw(encodeHeaderBlock(headers));
  }

  compressRaw(block: Buffer): Buffer {
    const d = this.deflate;
    d.chunks = [];
    if (!d.push(block, Z_SYNC_FLUSH)) throw new Error(`SPDY header compression failed: ${d.msg}`);
    const out = Buffer.concat(d.chunks);
    d.chunks = [];
    return out;
  }
}

/** One direction's decompressor; any error is fatal for the connection (the context is shared). */
export class HeaderDecompressor {
  private readonly inflate = new Inflate({ dictionary: SPDY3_HEADER_DICTIONARY });

  decompress(compressed: Buffer): Map<string, string[]> {
    return decodeHeaderBlock(this.decompressRaw(compressed));
  }

  decompressRaw(compressed: Buffer): Buffer {
    const z = this.inflate;
    z.chunks = [];
    if (!z.push(compressed, Z_SYNC_FLUSH) || z.err !== 0) {
      throw new SpdyProtocolError(`SPDY header block does not decompress: ${z.msg || 'zlib error'}`);
    }
    const out = Buffer.concat(z.chunks);
    z.chunks = [];
    if (out.length > MAX_HEADER_BLOCK) throw new SpdyProtocolError('SPDY header block too large');
    return out;
  }
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

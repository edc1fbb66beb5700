/**
 * The Engine's multiplexed stream (no TTY): frames of an 8-byte header `[STREAM, 0, 0, 0,
 * SIZE as uint32 big-endian]` and SIZE bytes of payload (moby api/pkg/stdcopy). STREAM is 0
 * stdin, 1 stdout, 2 stderr, 3 the Engine's own error text. Frames split anywhere across socket
 * chunks; payload is handed on as it arrives, so memory stays at one chunk whatever SIZE says.
 */
export const STDOUT = 1;
export const STDERR = 2;
export const SYSTEM_ERROR = 3;

const HEADER_BYTES = 8;

export class FrameDemuxer {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private headerFill = 0;
  private stream = 0;
  private remaining = 0;

  constructor(private readonly onPayload: (stream: number, payload: Buffer) => void) {}

  /** True between frames: the stream may end here without losing part of one. */
  get atBoundary(): boolean {
    return this.headerFill === 0 && this.remaining === 0;
  }

  feed(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.remaining === 0) {
        const take = Math.min(HEADER_BYTES - this.headerFill, chunk.length - at);
        chunk.copy(this.header, this.headerFill, at, at + take);
        this.headerFill += take;
        at += take;
        if (this.headerFill < HEADER_BYTES) return;
        this.headerFill = 0;
        this.stream = this.header[0] ?? 0;
        this.remaining = this.header.readUInt32BE(4);
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - at);
      this.remaining -= take;
      this.onPayload(this.stream, chunk.subarray(at, at + take));
      at += take;
    }
  }
}

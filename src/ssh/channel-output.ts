/**
 * The one way bytes leave the bridge on an SSH session channel: the command's stdout and stderr
 * (through `pump`) and the bridge's own lines (notices, the final error) all go through one
 * ChannelOutput, which hands ssh2 ONE write at a time across both streams.
 *
 * Why one writer: a bridge line's place among the command's bytes is decided here, against what
 * has already been handed to ssh2; with one write in flight at a time that is exactly what the
 * client will have received before the line. (ssh2 1.17 also could not resume a stderr write
 * waiting for window after a stdout write had waited, since stdout and stderr share the window:
 * the stall of issue 8. That is fixed in ssh2 itself by our patch 006, docs/ssh2-patches.md.)
 *
 * Bridge text and the command's lines: a bridge line never goes inside a line of the command's
 * output. It waits for the stream it follows to be at a line start (it splits a chunk after its
 * first newline if need be) or to be quiet (nothing queued: a prompt without a newline), and
 * never holds the command's bytes back: they pass while it waits. Bridge lines keep their order.
 */
import type { ServerChannel } from 'ssh2';
import { Writable } from 'node:stream';

export type OutputStream = 'stdout' | 'stderr';

interface DataItem {
  stream: OutputStream;
  chunk: Buffer;
  done: (err?: Error | null) => void;
}

interface TextItem {
  /** The stream whose line boundaries the text respects (with a TTY: stdout, the terminal). */
  follows: OutputStream;
  text: string;
}

// Each stream buffers at most this much before its pump pauses the source: with one chunk in
// ssh2 and one per stream here, a channel holds a few hundred KiB at worst.
const STREAM_HIGH_WATER_MARK = 256 * 1024;
const NEWLINE = 0x0a;

export class ChannelOutput {
  readonly stdout: Writable;
  readonly stderr: Writable;
  private readonly queue: DataItem[] = [];
  private readonly texts: TextItem[] = [];
  private inFlight = false;
  /** The rest of a chunk split at a line end for bridge lines: it goes right after them. */
  private rest: DataItem | null = null;
  private closed = false;
  /** True while the last byte sent on the stream ended a line (or nothing was sent yet). */
  private readonly atLineStart: Record<OutputStream, boolean> = { stdout: true, stderr: true };
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly channel: ServerChannel,
    /** With a terminal, lines end in CRLF and bridge text follows the terminal's stream. */
    private readonly tty: boolean,
  ) {
    this.stdout = this.makeStream('stdout');
    this.stderr = this.makeStream('stderr');
    // ssh2 drops writes on a closed channel without calling back: release everyone instead.
    channel.on('close', () => this.close()); // close() runs once; on() spares once()'s wrapper
  }

  /** One line of the bridge's own, sent on stderr (extended data) at the next line boundary of
   *  the stream it follows: the terminal's with a TTY, stderr's own without. */
  line(text: string): void {
    if (this.closed) return;
    const eol = this.tty ? '\r\n' : '\n';
    this.texts.push({ follows: this.tty ? 'stdout' : 'stderr', text: `${text}${eol}` });
    this.drive();
  }

  /** Resolves when everything written so far (both streams and bridge lines) was handed to ssh2,
   *  or false when the channel closed or `signal` aborted first. */
  async flushed(signal?: AbortSignal): Promise<boolean> {
    if (this.closed || signal?.aborted) return false;
    if (this.isIdle()) return true;
    return new Promise((resolve) => {
      const onAbort = () => resolve(false);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.idleWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve(!this.closed);
      });
    });
  }

  private makeStream(stream: OutputStream): Writable {
    return new Writable({
      highWaterMark: STREAM_HIGH_WATER_MARK,
      write: (chunk: Buffer, _encoding, done) => {
        if (this.closed) return done();
        this.queue.push({ stream, chunk, done });
        this.drive();
      },
      final: (done) => {
        done();
        this.drive(); // a line waiting for this stream to go quiet may go now
      },
    });
  }

  /** Nothing of the stream is queued here or buffered in its Writable: the command is quiet. */
  private quiet(stream: OutputStream): boolean {
    const w = stream === 'stdout' ? this.stdout : this.stderr;
    return w.writableLength === 0 && !this.queue.some((d) => d.stream === stream);
  }

  private isIdle(): boolean {
    return !this.inFlight && this.rest === null && this.queue.length === 0 && this.texts.length === 0 && this.stdout.writableLength === 0 && this.stderr.writableLength === 0;
  }

  private drive(): void {
    while (!this.inFlight && !this.closed) {
      const text = this.texts[0];
      // Never ahead of the command's bytes already queued here for that stream.
      const queuedAhead = text !== undefined && this.queue.some((d) => d.stream === text.follows);
      if (text !== undefined && ((this.atLineStart[text.follows] && !queuedAhead) || this.quiet(text.follows))) {
        this.texts.shift();
        const lead = this.atLineStart[text.follows] ? '' : this.tty ? '\r\n' : '\n';
        this.atLineStart[text.follows] = true;
        this.atLineStart.stderr = true;
        this.send('stderr', Buffer.from(lead + text.text), null);
        continue;
      }
      if (this.rest !== null) {
        // The lines that were waiting for this line start are out: the chunk goes on.
        this.queue.unshift(this.rest);
        this.rest = null;
      }
      const item = this.queue.shift();
      if (item === undefined) break;
      const chunk = item.chunk;
      if (text !== undefined && text.follows === item.stream && chunk.length > 0) {
        // A bridge line is waiting for this stream's next line start: send up to the first
        // newline, and the rest after the line.
        const nl = chunk.indexOf(NEWLINE);
        if (nl >= 0 && nl < chunk.length - 1) {
          this.rest = { ...item, chunk: chunk.subarray(nl + 1) };
          this.send(item.stream, chunk.subarray(0, nl + 1), null);
          continue;
        }
      }
      this.send(item.stream, chunk, item.done);
    }
    if (this.isIdle() || this.closed) this.wakeIdleWaiters();
  }

  private send(stream: OutputStream, chunk: Buffer, done: ((err?: Error | null) => void) | null): void {
    if (chunk.length === 0) {
      done?.();
      return;
    }
    this.atLineStart[stream] = chunk[chunk.length - 1] === NEWLINE;
    this.inFlight = true;
    const target = stream === 'stdout' ? this.channel : this.channel.stderr;
    target.write(chunk, () => {
      this.inFlight = false;
      done?.();
      this.drive();
    });
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inFlight = false;
    if (this.rest !== null) this.queue.unshift(this.rest);
    this.rest = null;
    for (const item of this.queue.splice(0)) item.done();
    this.texts.length = 0;
    // The pumps see 'close' and stop; their sources stay paused.
    this.stdout.destroy();
    this.stderr.destroy();
    this.wakeIdleWaiters();
  }
}

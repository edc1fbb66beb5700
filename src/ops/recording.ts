/**
 * Session recordings (--record-dir): one asciicast v3 file per TTY session
 * (https://docs.asciinema.org/manual/asciicast/v3/): a header line with the terminal, time,
 * command, and who went where; then `[interval, code, data]` events: "o" output, "i" input (only
 * with --record-input), "r" resize, "x" exit status. Playable with asciinema 3 and
 * asciinema-player.
 *
 * Off the hot path: the session's tap only appends a line to a queue; one writer per file drains
 * it. Memory is bounded by MAX_QUEUED_BYTES per session and the file by --record-max-size; past
 * either the recording stops (marked in the file), and with --record-required the session ends.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import os from 'node:os';
import type { Exit, TerminalSize } from '../backends/backend.ts';
import { BridgeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';
import type { RecorderFactory, RecordingHandle, SessionPlace, SessionStart } from './session-tap.ts';

/** A disk slower than the session's output for longer than this much data fails the recording. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export interface RecordingOptions {
  dir: string;
  input: boolean;
  required: boolean;
  maxBytes: number;
}

export function recorder(options: RecordingOptions, log: Logger, metrics: Metrics | null): RecorderFactory {
  return {
    open(info) {
      if (info.tty === null) return null; // commands and file transfers: audit events only
      let fd: number;
      // Named so a directory listing sorts by time and says whose session it was.
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const file = path.join(options.dir, `${stamp}-${info.conn}-${randomBytes(3).toString('hex')}.cast`);
      try {
        fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
        // Synchronously, once per session: whether a recording exists must be known before anything runs.
        fd = fs.openSync(file, 'wx', 0o600);
      } catch (err) {
        const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        metrics?.recordingsFailed.inc({ stage: 'open' });
        log.error({ file, reason, required: options.required }, 'session recording could not be opened');
        if (!options.required) return null;
        return new BridgeError('recording-failed', `this bridge records terminal sessions and the recording could not be started (${reason}); nothing was run: tell the bridge's operator`);
      }
      log.info({ file }, 'session recording started');
      return new Recording(fd, file, info, options, log, metrics);
    },
  };
}

class Recording implements RecordingHandle {
  private readonly queue: string[] = [];
  private queued = 0;
  private written = 0;
  private last = performance.now();
  private writing = false;
  private stopped = false;
  private closing = false;
  private failure: ((reason: string) => void) | null = null;
  private readonly out = new StringDecoder('utf8');
  private readonly in = new StringDecoder('utf8');

  constructor(
    private fd: number,
    private readonly file: string,
    info: SessionStart & SessionPlace,
    private readonly options: RecordingOptions,
    private readonly log: Logger,
    private readonly metrics: Metrics | null,
  ) {
    const tty = info.tty!;
    const header = {
      version: 3,
      term: { cols: tty.cols || 80, rows: tty.rows || 24, type: tty.term },
      timestamp: Math.floor(Date.now() / 1000),
      command: info.command ?? 'login shell',
      title: `${info.identity} on ${info.target}`,
      tags: ['podbridge'],
    };
    // Who, from where, into what: a comment line (the format allows them after the header), so
    // players ignore it and an auditor can grep it.
    const who = { identity: info.identity, target: info.target, remote: info.remote, conn: info.conn, host: os.hostname() };
    this.push(`${JSON.stringify(header)}\n# podbridge ${JSON.stringify(who)}\n`);
  }

  output(chunk: Buffer): void {
    const text = this.out.write(chunk);
    if (text) this.event('o', text);
  }

  input(chunk: Buffer): void {
    if (!this.options.input) return;
    const text = this.in.write(chunk);
    if (text) this.event('i', text);
  }

  resize(size: TerminalSize): void {
    this.event('r', `${size.cols}x${size.rows}`);
  }

  onFailure(cb: (reason: string) => void): void {
    this.failure = cb;
  }

  close(exit: Exit | null): void {
    const rest = this.out.end();
    if (rest) this.event('o', rest);
    if (exit !== null) this.event('x', String(exitStatus(exit)));
    this.closing = true;
    if (!this.writing) this.finish();
  }

  private event(code: string, data: string): void {
    if (this.stopped) return;
    const now = performance.now();
    const interval = Math.max(0, (now - this.last) / 1000);
    this.last = now;
    const line = `${JSON.stringify([Number(interval.toFixed(6)), code, data])}\n`;
    if (this.written + this.queued + line.length > this.options.maxBytes) {
      return this.stop('size', `recording reached its size cap (${this.options.maxBytes} bytes)`);
    }
    this.push(line);
  }

  private push(line: string): void {
    this.queue.push(line);
    this.queued += Buffer.byteLength(line);
    if (this.queued > MAX_QUEUED_BYTES) return this.stop('write', 'the recording cannot be written as fast as the session produces output');
    if (!this.writing) this.drain();
  }

  /** One write at a time, in order; the session never waits for it. */
  private drain(): void {
    if (this.queue.length === 0) {
      if (this.closing) this.finish();
      return;
    }
    this.writing = true;
    const data = this.queue.splice(0).join('');
    const size = Buffer.byteLength(data);
    fs.write(this.fd, data, null, 'utf8', (err) => {
      this.writing = false;
      this.queued -= size;
      if (err) return this.stop('write', `the recording could not be written (${(err as NodeJS.ErrnoException).code ?? err.message})`);
      this.written += size;
      this.drain();
    });
  }

  private stop(stage: 'write' | 'size', reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queue.length = 0;
    this.queued = 0;
    if (stage === 'size') {
      // Say so in the file, where whoever plays it will look.
      this.queue.push(`${JSON.stringify([0, 'm', `podbridge: ${reason}; the rest of the session is not recorded`])}\n`);
    }
    this.metrics?.recordingsFailed.inc({ stage });
    this.log.error({ file: this.file, reason, required: this.options.required }, 'session recording stopped');
    if (this.options.required) this.failure?.(`${reason}, and this bridge requires one`);
    if (!this.writing) this.drain();
  }

  private finish(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    fs.close(fd, () => this.log.debug({ file: this.file, bytes: this.written }, 'session recording closed'));
  }
}

/** The status a shell would report: the code, 128 + signal number, or 255 for the bridge's own failures. */
function exitStatus(exit: Exit): number {
  if (exit.kind === 'code') return exit.code;
  if (exit.kind === 'signal') return 128 + ((os.constants.signals as Record<string, number>)[`SIG${exit.signal}`] ?? 127);
  return 255;
}

/**
 * One running exec, as a RemoteProcess: our own client of the channel protocol over an open `ws`
 * socket (not client-node's Exec helper, which loses backpressure, Status bodies and closes).
 *
 * Flow control, both ways:
 * - in: when stdout or stderr `push()` returns false we pause the socket; TCP then holds the API
 *   server, which stops reading the process. `_read` resumes. Memory: one Readable high-water
 *   mark (256 KiB) per stream plus what one socket read delivers.
 * - out: each stdin chunk's write callback runs when ws has handed its frame to the socket, so the
 *   Writable's high-water mark bounds what we hold.
 */
import { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type WebSocket from 'ws';
import type { Exit, RemoteProcess, TerminalSize, TtySpec } from '../backend.ts';
import { BridgeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { endedByBridge, execFailure, streamLost } from './exec-errors.ts';
import type { ProcessControl } from './process-control.ts';
import {
  Channel,
  decodeFrame,
  encodeClose,
  encodeFrame,
  encodeResize,
  interpretStatus,
  oneLine,
  parseStatus,
  type ProtocolVersion,
  type StatusOutcome,
} from './protocol.ts';
import type { ExecTarget } from './resolve.ts';

export interface ExecStreamTimings {
  /** How often we ping, so idle sessions survive load balancers (often 60 s idle limits). */
  keepaliveIntervalMs: number;
  /** Silence (no frame, no pong) after which the connection counts as lost. Not counted while
   *  we ourselves stopped reading for backpressure. */
  keepaliveTimeoutMs: number;
  /** After the Status, how long the server may take to close before we close ourselves. */
  closeAfterStatusMs: number;
  /** After terminate(), how long a clean WebSocket close may take before we cut the socket. */
  closeTimeoutMs: number;
}

export const DEFAULT_TIMINGS: ExecStreamTimings = {
  keepaliveIntervalMs: 30_000,
  keepaliveTimeoutMs: 120_000,
  closeAfterStatusMs: 5_000,
  closeTimeoutMs: 2_000,
};

export interface ExecStreamOptions {
  ws: WebSocket;
  version: ProtocolVersion;
  target: ExecTarget;
  tty: TtySpec | null;
  control: ProcessControl;
  /** Should already carry the target (namespace, pod, container) as bindings. */
  log: Logger;
  timings?: Partial<ExecStreamTimings>;
}

// Output buffers: large enough that the SSH channel window, not our pause/resume cycles, sets the
// pace (64 KiB cost a third of the throughput of a 100 MiB download through OpenSSH).
const OUTPUT_HIGH_WATER_MARK = 256 * 1024;
const STDIN_HIGH_WATER_MARK = 64 * 1024;
const TERMINATE_TREE_TIMEOUT_MS = 5_000;

export class ExecStream implements RemoteProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  readonly exited: Promise<Exit>;

  /** The negotiated protocol: v5 can deliver stdin EOF, v4 cannot. */
  readonly protocolVersion: ProtocolVersion;

  get canCloseStdin(): boolean {
    return this.protocolVersion === 'v5';
  }

  private readonly ws: WebSocket;
  private readonly target: ExecTarget;
  private readonly hasTty: boolean;
  private readonly control: ProcessControl;
  private readonly log: Logger;
  private readonly timings: ExecStreamTimings;

  private resolveExited: (exit: Exit) => void = () => {};
  private finished = false;
  private terminateReason: string | null = null;
  private terminating: Promise<void> | null = null;

  private readonly statusChunks: Buffer[] = [];
  private outcome: StatusOutcome | null = null;

  /** Readables whose buffer is full; the socket stays paused while any is. */
  private readonly blocked = new Set<Readable>();
  private lastHeardAt = Date.now();
  private lostReason: string | null = null;
  private socketError: Error | null = null;
  private readonly keepaliveTimer: NodeJS.Timeout;
  private closeTimer: NodeJS.Timeout | null = null;

  private resizeInFlight = false;
  private pendingResize: TerminalSize | null = null;
  private lastSentSize: TerminalSize | null = null;
  private resizesSent = 0;

  private droppedStdinLogged = false;

  constructor(options: ExecStreamOptions) {
    this.ws = options.ws;
    this.protocolVersion = options.version;
    this.target = options.target;
    this.hasTty = options.tty !== null;
    this.control = options.control;
    this.log = options.log;
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    this.exited = new Promise<Exit>((resolve) => (this.resolveExited = resolve));

    // Before anything else: the first resize must reach the server before the process looks
    // at its terminal (see command.ts for the bounded wait on the other side).
    if (options.tty !== null) this.resize({ cols: options.tty.cols, rows: options.tty.rows });

    this.stdout = this.makeReadable();
    this.stderr = this.hasTty ? null : this.makeReadable();
    this.stdin = new Writable({
      highWaterMark: STDIN_HIGH_WATER_MARK,
      write: (chunk: Buffer, _encoding, callback) => this.writeStdin(chunk, callback),
      final: (callback) => this.endStdin(callback),
    });

    this.ws.on('message', (data) => this.onMessage(toBuffer(data)));
    this.ws.on('pong', () => (this.lastHeardAt = Date.now()));
    this.ws.on('error', (err) => (this.socketError ??= err));
    this.ws.on('close', (code, reason) => this.finish(code, reason.toString('utf8')));

    this.keepaliveTimer = setInterval(() => this.keepalive(), this.timings.keepaliveIntervalMs);
    this.keepaliveTimer.unref();
  }

  resize(size: TerminalSize): void {
    if (!this.hasTty || size.cols <= 0 || size.rows <= 0) return;
    // Coalesce bursts: keep only the latest size while one is in flight; it is sent next.
    this.pendingResize = { cols: size.cols, rows: size.rows };
    this.flushResize();
  }

  signal(name: string): void {
    this.control.signal(name);
  }

  terminate(reason: string): Promise<void> {
    if (this.finished) return Promise.resolve();
    this.terminating ??= this.runTerminate(reason);
    return this.terminating;
  }

  private async runTerminate(reason: string): Promise<void> {
    this.terminateReason = reason;
    try {
      // Bounded: a cleanup that hangs must not keep the stream (and the caller) open forever.
      const gaveUp = delay(TERMINATE_TREE_TIMEOUT_MS, 'timeout' as const, { ref: false });
      if ((await Promise.race([this.control.terminateTree(reason), gaveUp])) === 'timeout') {
        this.log.warn('process-tree cleanup did not finish in time');
      }
    } catch (err) {
      this.log.warn({ err }, 'process-tree cleanup failed');
    }
    // Nobody will read the rest: drop output from now on, and read on so the close handshake
    // (and any Status) gets through.
    this.blocked.clear();
    this.ws.resume();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000, 'podbridge session ended');
    this.armCloseTimer(this.timings.closeTimeoutMs);
    await this.exited;
  }

  private makeReadable(): Readable {
    const stream: Readable = new Readable({
      highWaterMark: OUTPUT_HIGH_WATER_MARK,
      read: () => this.unblock(stream),
    });
    // A consumer that destroys a stream must not leave the socket paused forever.
    stream.on('close', () => this.unblock(stream));
    return stream;
  }

  private onMessage(message: Buffer): void {
    this.lastHeardAt = Date.now();
    const frame = decodeFrame(message);
    if (frame === null) return;
    switch (frame.channel) {
      case Channel.stdout:
        return this.deliver(this.stdout, frame.payload);
      case Channel.stderr:
        // Not requested with a TTY; if a server sends it anyway, the terminal is where it belongs.
        return this.deliver(this.stderr ?? this.stdout, frame.payload);
      case Channel.status:
        return this.onStatus(frame.payload);
      default:
        this.log.debug({ channel: frame.channel }, 'exec frame on an unknown channel ignored');
    }
  }

  private deliver(stream: Readable, payload: Buffer): void {
    // Empty frames are the server's readiness signal; pushing one would mean nothing.
    if (payload.length === 0 || this.terminateReason !== null || stream.destroyed || this.finished) return;
    if (!stream.push(payload)) {
      this.blocked.add(stream);
      this.ws.pause();
    }
  }

  private unblock(stream: Readable): void {
    if (!this.blocked.delete(stream) || this.blocked.size > 0) return;
    // Silence while paused was ours, not the server's.
    this.lastHeardAt = Date.now();
    this.ws.resume();
  }

  private onStatus(payload: Buffer): void {
    // An empty frame here is a readiness signal (a server that writes no stdout sends it on 3).
    if (payload.length === 0 || this.outcome !== null) return;
    this.statusChunks.push(payload);
    const status = parseStatus(Buffer.concat(this.statusChunks));
    if (status === null) return; // a Status split over frames: wait for the rest
    this.outcome = interpretStatus(status);
    this.log.debug({ status }, 'exec status received');
    this.armCloseTimer(this.timings.closeAfterStatusMs);
  }

  private armCloseTimer(ms: number): void {
    if (this.closeTimer !== null || this.finished) return;
    this.closeTimer = setTimeout(() => {
      this.closeTimer = null;
      // Paused means unread output still sits in the socket: cutting now would lose it.
      if (this.ws.isPaused && this.terminateReason === null) return this.armCloseTimer(ms);
      this.ws.terminate();
    }, ms);
    this.closeTimer.unref();
  }

  private keepalive(): void {
    if (this.finished || this.ws.readyState !== this.ws.OPEN) return;
    if (!this.ws.isPaused && Date.now() - this.lastHeardAt > this.timings.keepaliveTimeoutMs) {
      this.lostReason = `no answer to keepalives for ${Number((this.timings.keepaliveTimeoutMs / 1000).toFixed(1))} s`;
      this.ws.terminate();
      return;
    }
    this.ws.ping();
  }

  private writeStdin(chunk: Buffer, callback: (err?: Error | null) => void): void {
    // An empty write (pipe.ts's flush marker) carries nothing; earlier writes already completed,
    // because Writable calls us one chunk at a time.
    if (chunk.length === 0) return callback();
    if (this.finished || this.terminateReason !== null || this.ws.readyState !== this.ws.OPEN) {
      // The process is gone or going: its stdin has nowhere to go, as with sshd. Never an error,
      // which would tear down the caller's pump.
      this.logDroppedStdin();
      return callback();
    }
    // A resize the user made before typing must reach the process before what they typed.
    this.flushResize(true);
    this.ws.send(encodeFrame(Channel.stdin, chunk), { binary: true }, (err) => {
      if (err) this.logDroppedStdin();
      callback();
    });
  }

  private endStdin(callback: (err?: Error | null) => void): void {
    if (this.finished || this.ws.readyState !== this.ws.OPEN) return callback();
    if (this.protocolVersion === 'v5') {
      this.ws.send(encodeClose(Channel.stdin), { binary: true }, () => callback());
      return;
    }
    // v4 has no way to say EOF: closing the socket would lose the rest of the output and the
    // exit status. Keep streaming; commands that wait for EOF will wait.
    this.log.debug('stdin EOF cannot be delivered over v4.channel.k8s.io (API server older than 1.30?)');
    callback();
  }

  private logDroppedStdin(): void {
    if (this.droppedStdinLogged) return;
    this.droppedStdinLogged = true;
    this.log.debug('stdin after the exec stream ended was dropped');
  }

  /** `force`: send the pending size even while another is in flight (to keep it ahead of data). */
  private flushResize(force = false): void {
    if ((this.resizeInFlight && !force) || this.pendingResize === null || this.ws.readyState !== this.ws.OPEN) return;
    const size = this.pendingResize;
    this.pendingResize = null;
    if (this.lastSentSize !== null && this.lastSentSize.cols === size.cols && this.lastSentSize.rows === size.rows) return;
    this.lastSentSize = size;
    this.resizeInFlight = true;
    const sent = ++this.resizesSent;
    this.ws.send(encodeResize(size.cols, size.rows), { binary: true }, () => {
      if (sent !== this.resizesSent) return; // a forced send overtook us; its callback decides
      this.resizeInFlight = false;
      this.flushResize();
    });
  }

  private finish(closeCode: number, closeReason: string): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.keepaliveTimer);
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    let exit: Exit;
    try {
      exit = this.exitFor(closeCode, closeReason);
    } catch (err) {
      exit = { kind: 'error', error: new BridgeError('internal', 'internal error in podbridge; see the bridge log', { cause: err }) };
    }
    this.blocked.clear();
    // The contract: every byte is pushed and both streams ended before `exited` resolves.
    if (!this.stdout.destroyed) this.stdout.push(null);
    if (this.stderr !== null && !this.stderr.destroyed) this.stderr.push(null);
    this.log.debug({ exit: describeExit(exit), closeCode }, 'exec stream finished');
    this.resolveExited(exit);
  }

  private exitFor(closeCode: number, closeReason: string): Exit {
    let outcome = this.outcome;
    if (outcome === null && this.statusChunks.length > 0) {
      // Bytes on the status channel that never became a Status: keep them as the message.
      const text = oneLine(Buffer.concat(this.statusChunks).toString('utf8'));
      if (text !== '') outcome = { kind: 'failure', reason: 'Unknown', message: text };
    }
    if (outcome !== null) {
      if (outcome.kind === 'exit') return { kind: 'code', code: outcome.code };
      return { kind: 'error', error: execFailure(this.target, outcome.message, { reason: outcome.reason }) };
    }
    const detail = { closeCode, closeReason, socketError: this.socketError?.message, lost: this.lostReason };
    if (this.terminateReason !== null) {
      return { kind: 'error', error: endedByBridge(this.target, this.terminateReason, detail) };
    }
    const why = this.lostReason ?? this.socketError?.message ?? (closeReason !== '' ? closeReason : null);
    return { kind: 'error', error: streamLost(this.target, why, detail) };
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function describeExit(exit: Exit): string {
  switch (exit.kind) {
    case 'code':
      return `code ${exit.code}`;
    case 'signal':
      return `signal ${exit.signal}`;
    case 'error':
      return `${exit.error.code}: ${exit.error.message}`;
  }
}

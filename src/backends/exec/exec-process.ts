/**
 * One running exec, as a RemoteProcess, over any channel transport (transport.ts: Kubernetes'
 * WebSocket v5/v4 and SPDY/3.1, the Docker Engine's hijacked socket): everything about an exec
 * that depends neither on the framing nor on the backend; the backend's words for its failures
 * come in as `words`. Our own client (not client-node's Exec helper, which loses backpressure,
 * Status bodies and closes).
 *
 * Flow control, both ways:
 * - in: when stdout or stderr `push()` returns false we pause the transport; the peer then stops
 *   sending and the API server stops reading the process. `_read` resumes. Memory: one Readable
 *   high-water mark (256 KiB) per stream plus what one socket read delivers.
 * - out: each stdin chunk's write callback runs when the transport has handed its frame to the
 *   socket, so the Writable's high-water mark bounds what we hold.
 *
 * Lifecycle (see docs/lifecycle.md):
 * - with `pidReport`, the first stdout bytes are the wrapper's PID report (command.ts): stripped
 *   here, handed to the process control; stdin waits for it (bounded) so a TTY cannot echo
 *   anything ahead of it;
 * - `signal()` goes to the process control (a second exec); an exit of 128+N after the client
 *   asked for signal N is reported as that signal, as sshd would;
 * - `terminate()` has the control end the session's processes before the stream is closed;
 * - an end we did not ask for goes through `afterEnd`, which may explain it (pod deleted,
 *   container restarted) and start the cleanup of a stream that was lost.
 */
import { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Exit, RemoteProcess, TerminalSize, TtySpec } from '../backend.ts';
import { BridgeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { LINUX_SIGNALS, TERMINATING_SIGNALS, normalizeSignal } from './control/control-script.ts';
import type { ProcessControl } from './control/process-control.ts';
import { interpretStatus, oneLine, parseStatus, type StatusOutcome } from './kube-status.ts';
import { PidReportReader } from './pid-report.ts';
import type { ChannelTransport, IncomingStream } from './transport.ts';

export interface ExecProcessTimings {
  /** How often we ping, so idle sessions survive load balancers (often 60 s idle limits). */
  keepaliveIntervalMs: number;
  /** Silence (no frame, no pong) after which the connection counts as lost. Not counted while
   *  we ourselves stopped reading for backpressure. */
  keepaliveTimeoutMs: number;
  /** After the Status, how long the server may take to close before we close ourselves. */
  closeAfterStatusMs: number;
  /** After terminate(), how long a clean close may take before we cut the socket. */
  closeTimeoutMs: number;
  /** How long terminate() waits for the process control's cleanup before closing anyway. */
  terminateTreeTimeoutMs: number;
  /** How long stdin is held back waiting for the wrapper's PID report. */
  pidReportWaitMs: number;
}

export const DEFAULT_TIMINGS: ExecProcessTimings = {
  keepaliveIntervalMs: 30_000,
  keepaliveTimeoutMs: 120_000,
  closeAfterStatusMs: 5_000,
  closeTimeoutMs: 2_000,
  terminateTreeTimeoutMs: 5_000,
  pidReportWaitMs: 5_000,
};

/** A backend's one-line messages for an exec that did not end with an exit status, naming its
 *  place (pod, container); `detail` goes to the log. */
export interface ExecWords {
  /** The runtime could not run the command; `words` is what it said. */
  failed(words: string, detail: Record<string, unknown>): BridgeError;
  /** The stream ended without an exit status: never report that as exit 0. */
  lost(why: string | null, detail: Record<string, unknown>): BridgeError;
  /** terminate() closed the stream before the process reported an exit status. */
  endedByBridge(reason: string, detail: Record<string, unknown>): BridgeError;
}

export interface ExecProcessOptions {
  /** The open connection, not yet attached: the process attaches at once. */
  transport: ChannelTransport;
  words: ExecWords;
  /** The terminal's size (a TtySpec will do), or null for none. */
  tty: TtySpec | TerminalSize | null;
  control: ProcessControl;
  /** Should already carry the target (namespace, pod, container) as bindings. */
  log: Logger;
  timings?: Partial<ExecProcessTimings>;
  /** The command starts with the wrapper's PID report on stdout (buildExecCommand's reportPid). */
  pidReport?: boolean;
  /** Other bytes on stdout where the report belongs are the runtime's words about a start that
   *  failed (the Docker Engine writes them on the stream), kept for the error and never shown.
   *  Without this they are the user's output. */
  runtimeSpeaksFirst?: boolean;
  /** For an end we did not cause (not terminate()): may replace the exit (explain it) and start
   *  work of its own. `exited` resolves with what it returns; the caller bounds its time. */
  afterEnd?: (exit: Exit) => Promise<Exit>;
}

// Output buffers: large enough that the SSH channel window, not our pause/resume cycles, sets the
// pace (64 KiB cost a third of the throughput of a 100 MiB download through OpenSSH).
const OUTPUT_HIGH_WATER_MARK = 256 * 1024;
const STDIN_HIGH_WATER_MARK = 64 * 1024;
/** The runtime's words before our wrapper ran: one line of error, never more. */
const MAX_START_ERROR_BYTES = 4096;

export class ExecProcess implements RemoteProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  readonly exited: Promise<Exit>;
  /** Resolves once the wrapper reported its PID (or stdin was released without it): the
   *  user's command is running. Without `pidReport`, at once. */
  readonly started: Promise<void>;
  private resolveStarted!: () => void;

  /** What was negotiated, e.g. `v4.channel.k8s.io over SPDY/3.1`, for the log and messages. */
  readonly protocol: string;

  /** v5 over WebSocket and every SPDY protocol can deliver stdin EOF; v4 over WebSocket cannot. */
  get canCloseStdin(): boolean {
    return this.transport.canCloseStdin;
  }

  private readonly transport: ChannelTransport;
  private readonly words: ExecWords;
  private readonly hasTty: boolean;
  private readonly control: ProcessControl;
  private readonly log: Logger;
  private readonly timings: ExecProcessTimings;

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

  private readonly afterEnd: ((exit: Exit) => Promise<Exit>) | null;
  /** Set while the first stdout bytes are (maybe partly) the PID report. */
  private report: PidReportReader | null;
  private readonly runtimeSpeaksFirst: boolean;
  /** The runtime's words where the report belonged (with runtimeSpeaksFirst): the wrapper never ran. */
  private startWords: Buffer | null = null;
  /** stdin waits for the PID report; at most one write or the end is held (Writable serialises). */
  private stdinHeld: boolean;
  private heldWrite: { chunk: Buffer; callback: (err?: Error | null) => void } | null = null;
  private heldEnd: ((err?: Error | null) => void) | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  /** Signals the client asked for: an exit of 128+N after asking for N was that signal. */
  private readonly signalsRequested = new Set<string>();

  constructor(options: ExecProcessOptions) {
    this.transport = options.transport;
    this.protocol = options.transport.description;
    this.words = options.words;
    this.runtimeSpeaksFirst = options.runtimeSpeaksFirst === true;
    this.hasTty = options.tty !== null;
    this.control = options.control;
    this.log = options.log;
    this.timings = { ...DEFAULT_TIMINGS, ...options.timings };
    this.exited = new Promise<Exit>((resolve) => (this.resolveExited = resolve));
    this.started = new Promise<void>((resolve) => (this.resolveStarted = resolve));
    if (options.pidReport !== true) this.resolveStarted();
    this.afterEnd = options.afterEnd ?? null;
    this.report = options.pidReport === true ? new PidReportReader() : null;
    this.stdinHeld = options.pidReport === true;
    if (this.stdinHeld) {
      // A wrapper that cannot print (it always can; still) must not hold the user's input forever.
      this.holdTimer = setTimeout(() => {
        this.holdTimer = null;
        this.log.debug('no PID report from the wrapper in time; stdin released');
        this.resolveStarted();
        this.control.setLeader(null);
        this.releaseStdin();
      }, this.timings.pidReportWaitMs);
      this.holdTimer.unref();
    }

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

    this.transport.attach({
      data: (stream, payload) => this.onData(stream, payload),
      heard: () => (this.lastHeardAt = Date.now()),
      error: (err) => (this.socketError ??= err),
      closed: (code, reason) => this.finish(code, reason),
    });

    this.keepaliveTimer = setInterval(() => this.keepalive(), this.timings.keepaliveIntervalMs);
    this.keepaliveTimer.unref();
  }

  /** Something other than the wrapper's PID report came first: the wrapper never ran. */
  get wrapperFailed(): boolean {
    return this.startWords !== null;
  }

  resize(size: TerminalSize): void {
    if (!this.hasTty || size.cols <= 0 || size.rows <= 0) return;
    // Coalesce bursts: keep only the latest size while one is in flight; it is sent next.
    this.pendingResize = { cols: size.cols, rows: size.rows };
    this.flushResize();
  }

  signal(name: string): void {
    // Once the stream ended there is no process of ours left to signal (its PID may be reused).
    if (this.finished || this.terminateReason !== null) return;
    const sig = normalizeSignal(name);
    if (sig !== null) this.signalsRequested.add(sig);
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
      const gaveUp = delay(this.timings.terminateTreeTimeoutMs, 'timeout' as const, { ref: false });
      if ((await Promise.race([this.control.terminateTree(reason), gaveUp])) === 'timeout') {
        this.log.warn('process-tree cleanup did not finish in time');
      }
    } catch (err) {
      this.log.warn({ err }, 'process-tree cleanup failed');
    }
    // Nobody will read the rest: drop output from now on, and read on so the close handshake
    // (and any Status) gets through.
    this.blocked.clear();
    this.transport.resume();
    this.transport.close('podbridge session ended');
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

  private onData(stream: IncomingStream, payload: Buffer): void {
    switch (stream) {
      case 'stdout':
        if (this.startWords !== null) {
          if (this.startWords.length < MAX_START_ERROR_BYTES) this.startWords = Buffer.concat([this.startWords, payload]);
          return;
        }
        if (this.report !== null) return this.readPidReport(payload);
        return this.deliver(this.stdout, payload);
      case 'stderr':
        // Not requested with a TTY; if a server sends it anyway, the terminal is where it belongs.
        return this.deliver(this.stderr ?? this.stdout, payload);
      case 'status':
        return this.onStatus(payload);
    }
  }

  private deliver(stream: Readable, payload: Buffer): void {
    // Empty frames are the server's readiness signal; pushing one would mean nothing.
    if (payload.length === 0 || this.terminateReason !== null || stream.destroyed || this.finished) return;
    if (!stream.push(payload)) {
      this.blocked.add(stream);
      this.transport.pause();
    }
  }

  /** Collects the first stdout bytes until they are the whole PID report, or clearly not one. */
  private readPidReport(payload: Buffer): void {
    const r = this.report?.feed(payload);
    if (r === undefined || !r.done) return;
    this.report = null;
    this.resolveStarted();
    if (!r.report && this.runtimeSpeaksFirst) {
      // Our wrapper writes the report before anything else: these bytes are the runtime telling
      // why it could not start it (`OCI runtime exec failed: ... "/bin/sh": no such file`).
      this.startWords = r.rest;
      this.control.setLeader(null);
      return;
    }
    // A malformed report is still ours and was dropped; other first bytes are the user's.
    if (r.leader === null) this.log.debug("the wrapper's PID report was missing or malformed");
    else this.log.debug({ pid: r.leader.pid }, 'session main process');
    this.control.setLeader(r.leader);
    if (r.rest.length > 0) this.deliver(this.stdout, r.rest);
    this.releaseStdin();
  }

  private releaseStdin(): void {
    if (!this.stdinHeld) return;
    this.stdinHeld = false;
    if (this.holdTimer !== null) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    const write = this.heldWrite;
    const end = this.heldEnd;
    this.heldWrite = null;
    this.heldEnd = null;
    if (write !== null) this.writeStdin(write.chunk, write.callback);
    if (end !== null) this.endStdin(end);
  }

  private unblock(stream: Readable): void {
    if (!this.blocked.delete(stream) || this.blocked.size > 0) return;
    // Silence while paused was ours, not the server's.
    this.lastHeardAt = Date.now();
    this.transport.resume();
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
      if (this.transport.isPaused && this.terminateReason === null) return this.armCloseTimer(ms);
      this.transport.terminate();
    }, ms);
    this.closeTimer.unref();
  }

  private keepalive(): void {
    if (this.finished || !this.transport.isOpen) return;
    if (!this.transport.isPaused && Date.now() - this.lastHeardAt > this.timings.keepaliveTimeoutMs) {
      this.lostReason = `no answer to keepalives for ${Number((this.timings.keepaliveTimeoutMs / 1000).toFixed(1))} s`;
      this.transport.terminate();
      return;
    }
    this.transport.ping();
  }

  private writeStdin(chunk: Buffer, callback: (err?: Error | null) => void): void {
    // An empty write (pipe.ts's flush marker) carries nothing; earlier writes already completed,
    // because Writable calls us one chunk at a time.
    if (chunk.length === 0) return callback();
    if (this.stdinHeld && !this.finished) {
      this.heldWrite = { chunk, callback };
      return;
    }
    if (this.finished || this.terminateReason !== null || !this.transport.isOpen) {
      // The process is gone or going: its stdin has nowhere to go, as with sshd. Never an error,
      // which would tear down the caller's pump.
      this.logDroppedStdin();
      return callback();
    }
    // A resize the user made before typing must reach the process before what they typed.
    this.flushResize(true);
    this.transport.writeStdin(chunk, (err) => {
      if (err) this.logDroppedStdin();
      callback();
    });
  }

  private endStdin(callback: (err?: Error | null) => void): void {
    if (this.stdinHeld && !this.finished) {
      this.heldEnd = callback;
      return;
    }
    if (this.finished || !this.transport.isOpen) return callback();
    if (this.transport.canCloseStdin) return this.transport.endStdin(callback);
    // v4 over WebSocket has no way to say EOF: closing the socket would lose the rest of the
    // output and the exit status. Keep streaming; commands that wait for EOF will wait.
    this.log.debug({ protocol: this.protocol }, 'stdin EOF cannot be delivered over this exec protocol');
    callback();
  }

  private logDroppedStdin(): void {
    if (this.droppedStdinLogged) return;
    this.droppedStdinLogged = true;
    this.log.debug('stdin after the exec stream ended was dropped');
  }

  /** `force`: send the pending size even while another is in flight (to keep it ahead of data). */
  private flushResize(force = false): void {
    if ((this.resizeInFlight && !force) || this.pendingResize === null || !this.transport.isOpen) return;
    const size = this.pendingResize;
    this.pendingResize = null;
    if (this.lastSentSize !== null && this.lastSentSize.cols === size.cols && this.lastSentSize.rows === size.rows) return;
    this.lastSentSize = size;
    this.resizeInFlight = true;
    const sent = ++this.resizesSent;
    this.transport.writeResize(size.cols, size.rows, () => {
      if (sent !== this.resizesSent) return; // a forced send overtook us; its callback decides
      this.resizeInFlight = false;
      this.flushResize();
    });
  }

  private finish(closeCode: number, closeReason: string): void {
    if (this.finished) return;
    // Still reading: what was held is the start of our report, cut off; nothing of the user's.
    if (this.report !== null) this.control.setLeader(null);
    this.report = null;
    this.finished = true;
    clearInterval(this.keepaliveTimer);
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    // Held input has nowhere to go now: complete it so the writer is not left waiting.
    this.releaseStdin();
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
    if (this.terminateReason !== null || this.afterEnd === null) return this.resolveExited(exit);
    this.afterEnd(exit).then(
      (explained) => this.resolveExited(explained),
      (err: unknown) => {
        this.log.warn({ err }, 'explaining the end of the session failed');
        this.resolveExited(exit);
      },
    );
  }

  private signalBehind(code: number): string | null {
    return signalForExit({ code, requested: this.signalsRequested });
  }

  private exitFor(closeCode: number, closeReason: string): Exit {
    const detail = { closeCode, closeReason, socketError: this.socketError?.message, lost: this.lostReason };
    // We ended it: the status the cleanup's SIGHUP or SIGKILL produced says nothing more.
    if (this.terminateReason !== null) {
      return { kind: 'error', error: this.words.endedByBridge(this.terminateReason, { ...detail, status: this.outcome }) };
    }
    let outcome = this.outcome;
    if (outcome === null && this.statusChunks.length > 0) {
      // Bytes on the status channel that never became a Status: keep them as the message.
      const text = oneLine(Buffer.concat(this.statusChunks).toString('utf8'));
      if (text !== '') outcome = { kind: 'failure', reason: 'Unknown', message: text };
    }
    if (this.startWords !== null) {
      // The runtime spoke instead of our wrapper; a failure it reported as a Status says more.
      const failure = outcome?.kind === 'failure' ? outcome.message : '';
      const exitCode = outcome?.kind === 'exit' ? outcome.code : null;
      return { kind: 'error', error: this.words.failed(`${failure} ${this.startWords.toString('utf8')}`.trim(), { ...detail, exitCode }) };
    }
    if (outcome !== null) {
      if (outcome.kind === 'exit') {
        const signal = this.signalBehind(outcome.code);
        return signal === null ? { kind: 'code', code: outcome.code } : { kind: 'signal', signal, coreDumped: false };
      }
      return { kind: 'error', error: this.words.failed(outcome.message, { reason: outcome.reason }) };
    }
    const why = this.lostReason ?? this.socketError?.message ?? (closeReason !== '' ? closeReason : null);
    return { kind: 'error', error: this.words.lost(why, detail) };
  }
}

export interface SignalExitRule {
  code: number;
  requested: ReadonlySet<string>;
}

/**
 * Kubernetes reports a process killed by signal N as exit code 128+N: the same number as a
 * process that exited with that code. We say "killed by N" only when the client itself asked
 * for N during the session (and N ends a process by default), which is when sshd's answer would
 * have been exit-signal; any other 128+N stays an exit code.
 */
export function signalForExit({ code, requested }: SignalExitRule): string | null {
  if (code <= 128) return null;
  for (const name of requested) {
    if (TERMINATING_SIGNALS.has(name) && LINUX_SIGNALS[name] === code - 128) return name;
  }
  return null;
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

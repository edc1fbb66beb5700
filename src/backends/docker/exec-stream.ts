/**
 * One running Docker exec, as a RemoteProcess, over the socket `POST /exec/{id}/start` hijacked.
 *
 * Wire (moby daemon/server/router/container/exec.go): with a TTY the socket carries the raw
 * terminal both ways; without one, output is multiplexed (multiplex.ts) and input is raw. stdin
 * EOF is a half-close of the socket (the Engine closes the process's stdin when it reads EOF);
 * the stream ends when the process and everything holding its output has exited. The exit code
 * is not on the stream: `GET /exec/{id}/json` gives it once `Running` is false.
 *
 * Flow control: when stdout or stderr `push()` returns false the socket is paused, so the Engine
 * stops reading the process; `_read` resumes it. stdin writes complete when the socket took
 * them, so the Writable's high-water mark bounds what we hold.
 *
 * Lifecycle as the Kubernetes exec stream (docs/lifecycle.md): the wrapper's PID report is read
 * off stdout first and handed to the process control, stdin waits for it; any other first bytes
 * are the Engine's or the runtime's words (no /bin/sh), kept for the error, never shown as
 * output. signal() and terminate() go through the process control (a second exec).
 */
import type { Duplex } from 'node:stream';
import { Readable, Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Exit, RemoteProcess, TerminalSize } from '../backend.ts';
import { BridgeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { normalizeSignal } from '../kubernetes/control/control-script.ts';
import { signalForExit } from '../kubernetes/exec/exec-process.ts';
import type { ProcessControl } from '../kubernetes/control/process-control.ts';
import { oneLine } from '../kubernetes/api/status.ts';
import { PidReportReader } from '../pid-report.ts';
import { EngineError, type EngineClient } from './engine.ts';
import { placeDetail, startFailure, where, type DockerPlace } from './errors.ts';
import { FrameDemuxer, STDERR, STDOUT, SYSTEM_ERROR } from './multiplex.ts';

// As the Kubernetes exec stream: the SSH window, not our pause/resume cycles, sets the pace.
const OUTPUT_HIGH_WATER_MARK = 256 * 1024;
const STDIN_HIGH_WATER_MARK = 64 * 1024;
/** The Engine's or runtime's words before our wrapper ran: one line of error, never more. */
const MAX_START_ERROR_BYTES = 4096;

export interface DockerExecTimings {
  /** How long terminate() waits for the process control's cleanup before cutting the socket. */
  terminateTreeTimeoutMs: number;
  /** How long stdin is held back waiting for the wrapper's PID report. */
  pidReportWaitMs: number;
  /** After the stream ended, how long the Engine may keep reporting the exec as Running. */
  exitInspectMs: number;
}

export const DEFAULT_DOCKER_TIMINGS: DockerExecTimings = {
  terminateTreeTimeoutMs: 5_000,
  pidReportWaitMs: 5_000,
  exitInspectMs: 10_000,
};

export interface DockerExecOptions {
  engine: EngineClient;
  execId: string;
  socket: Duplex;
  /** Bytes that came with the 101 response head: the start of the stream. */
  head: Buffer;
  tty: boolean;
  place: DockerPlace;
  control: ProcessControl;
  log: Logger;
  timings?: Partial<DockerExecTimings>;
  /** The command starts with the wrapper's PID report on stdout. */
  pidReport?: boolean;
  /** For an end we did not cause: may replace the exit (explain it) and start work of its own. */
  afterEnd?: (exit: Exit) => Promise<Exit>;
}

interface ExecInspect {
  Running?: boolean;
  ExitCode?: number | null;
  Pid?: number;
}

export class DockerExec implements RemoteProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  readonly exited: Promise<Exit>;
  /** Resolves once the wrapper reported its PID (or something else spoke first, or the wait
   *  ran out): the user's command runs, or never will. */
  readonly started: Promise<void>;
  readonly canCloseStdin = true;

  private resolveStarted!: () => void;
  private resolveExited: (exit: Exit) => void = () => {};
  private readonly o: DockerExecOptions;
  private readonly timings: DockerExecTimings;
  private readonly log: Logger;
  private readonly demux: FrameDemuxer | null;
  private readonly blocked = new Set<Readable>();
  private finished = false;
  private terminateReason: string | null = null;
  private terminating: Promise<void> | null = null;
  private socketError: Error | null = null;

  private report: PidReportReader | null;
  /** Set when the first stdout bytes were not our report: the wrapper never ran. */
  private startError: Buffer | null = null;
  private systemError = '';

  private stdinHeld: boolean;
  private heldWrite: { chunk: Buffer; callback: (err?: Error | null) => void } | null = null;
  private heldEnd: ((err?: Error | null) => void) | null = null;
  private holdTimer: NodeJS.Timeout | null = null;
  private droppedStdinLogged = false;

  private resizeInFlight = false;
  private pendingResize: TerminalSize | null = null;
  private lastSentSize: TerminalSize | null = null;
  private readonly signalsRequested = new Set<string>();

  constructor(options: DockerExecOptions) {
    this.o = options;
    this.log = options.log;
    this.timings = { ...DEFAULT_DOCKER_TIMINGS, ...options.timings };
    this.exited = new Promise<Exit>((resolve) => (this.resolveExited = resolve));
    this.started = new Promise<void>((resolve) => (this.resolveStarted = resolve));
    this.report = options.pidReport === true ? new PidReportReader() : null;
    if (this.report === null) this.resolveStarted();
    this.stdinHeld = this.report !== null;
    if (this.stdinHeld) {
      this.holdTimer = setTimeout(() => {
        this.holdTimer = null;
        this.log.debug('no PID report from the wrapper in time; stdin released');
        this.resolveStarted();
        options.control.setLeader(null);
        this.releaseStdin();
      }, this.timings.pidReportWaitMs);
      this.holdTimer.unref();
    }

    this.stdout = this.makeReadable();
    this.stderr = options.tty ? null : this.makeReadable();
    this.stdin = new Writable({
      highWaterMark: STDIN_HIGH_WATER_MARK,
      write: (chunk: Buffer, _encoding, callback) => this.writeStdin(chunk, callback),
      final: (callback) => this.endStdin(callback),
    });
    this.demux = options.tty ? null : new FrameDemuxer((stream, payload) => this.onFrame(stream, payload));

    const socket = options.socket;
    // An idle session must survive NAT and load balancers between us and a TCP Engine.
    const maybeNet = socket as Duplex & { setKeepAlive?: (on: boolean, ms: number) => void; setNoDelay?: (on: boolean) => void };
    maybeNet.setKeepAlive?.(true, 30_000);
    maybeNet.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => (this.socketError ??= err));
    // 'end' is the Engine's half of the stream done; 'close' covers a socket cut without one.
    socket.on('end', () => void this.finish());
    socket.on('close', () => void this.finish());
    if (options.head.length > 0) this.onData(options.head);
  }

  /** Something other than the wrapper's PID report came first: the wrapper never ran. */
  get wrapperFailed(): boolean {
    return this.startError !== null;
  }

  resize(size: TerminalSize): void {
    if (!this.o.tty || size.cols <= 0 || size.rows <= 0) return;
    this.pendingResize = { cols: size.cols, rows: size.rows };
    this.flushResize();
  }

  signal(name: string): void {
    if (this.finished || this.terminateReason !== null) return;
    const sig = normalizeSignal(name);
    if (sig !== null) this.signalsRequested.add(sig);
    this.o.control.signal(name);
  }

  terminate(reason: string): Promise<void> {
    if (this.finished) return Promise.resolve();
    this.terminating ??= this.runTerminate(reason);
    return this.terminating;
  }

  private async runTerminate(reason: string): Promise<void> {
    this.terminateReason = reason;
    try {
      const gaveUp = delay(this.timings.terminateTreeTimeoutMs, 'timeout' as const, { ref: false });
      if ((await Promise.race([this.o.control.terminateTree(reason), gaveUp])) === 'timeout') {
        this.log.warn('process-tree cleanup did not finish in time');
      }
    } catch (err) {
      this.log.warn({ err }, 'process-tree cleanup failed');
    }
    // Nobody reads the rest: drop it and close; the processes were ended (or could not be).
    this.blocked.clear();
    this.o.socket.destroy();
    await this.exited;
  }

  private makeReadable(): Readable {
    const stream: Readable = new Readable({ highWaterMark: OUTPUT_HIGH_WATER_MARK, read: () => this.unblock(stream) });
    stream.on('close', () => this.unblock(stream));
    return stream;
  }

  private onData(chunk: Buffer): void {
    if (this.demux !== null) this.demux.feed(chunk);
    else this.onStdout(chunk);
  }

  private onFrame(stream: number, payload: Buffer): void {
    if (stream === STDOUT) return this.onStdout(payload);
    if (stream === STDERR) return this.deliver(this.stderr ?? this.stdout, payload);
    if (stream === SYSTEM_ERROR && this.systemError.length < MAX_START_ERROR_BYTES) this.systemError += payload.toString('utf8');
  }

  private onStdout(payload: Buffer): void {
    if (this.startError !== null) {
      if (this.startError.length < MAX_START_ERROR_BYTES) this.startError = Buffer.concat([this.startError, payload]);
      return;
    }
    if (this.report === null) return this.deliver(this.stdout, payload);
    const r = this.report.feed(payload);
    if (!r.done) return;
    this.report = null;
    this.resolveStarted();
    if (!r.report) {
      // Our wrapper writes the report before anything else: these bytes are the Engine telling
      // why it could not start it (`OCI runtime exec failed: ... "/bin/sh": no such file`).
      this.startError = r.rest;
      this.o.control.setLeader(null);
      return;
    }
    this.log.debug({ pid: r.leader?.pid }, r.leader === null ? "the wrapper's PID report was malformed" : 'session main process');
    this.o.control.setLeader(r.leader);
    if (r.rest.length > 0) this.deliver(this.stdout, r.rest);
    this.releaseStdin();
  }

  private deliver(stream: Readable, payload: Buffer): void {
    if (payload.length === 0 || this.terminateReason !== null || stream.destroyed || this.finished) return;
    if (!stream.push(payload)) {
      this.blocked.add(stream);
      this.o.socket.pause();
    }
  }

  private unblock(stream: Readable): void {
    if (!this.blocked.delete(stream) || this.blocked.size > 0) return;
    this.o.socket.resume();
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

  private writeStdin(chunk: Buffer, callback: (err?: Error | null) => void): void {
    if (chunk.length === 0) return callback();
    if (this.stdinHeld && !this.finished) {
      this.heldWrite = { chunk, callback };
      return;
    }
    const socket = this.o.socket;
    if (this.finished || this.terminateReason !== null || socket.writableEnded || socket.destroyed) {
      this.logDroppedStdin();
      return callback();
    }
    // A resize the user made before typing must reach the process before what they typed.
    this.flushResize(true);
    socket.write(chunk, (err) => {
      if (err) this.logDroppedStdin();
      callback();
    });
  }

  private endStdin(callback: (err?: Error | null) => void): void {
    if (this.stdinHeld && !this.finished) {
      this.heldEnd = callback;
      return;
    }
    const socket = this.o.socket;
    if (this.finished || socket.writableEnded || socket.destroyed) return callback();
    // Half-close: the Engine reads EOF and closes the process's stdin; output keeps coming.
    socket.end(() => callback());
  }

  private logDroppedStdin(): void {
    if (this.droppedStdinLogged) return;
    this.droppedStdinLogged = true;
    this.log.debug('stdin after the exec stream ended was dropped');
  }

  private flushResize(force = false): void {
    if ((this.resizeInFlight && !force) || this.pendingResize === null || this.finished) return;
    const size = this.pendingResize;
    this.pendingResize = null;
    if (this.lastSentSize !== null && this.lastSentSize.cols === size.cols && this.lastSentSize.rows === size.rows) return;
    this.lastSentSize = size;
    this.resizeInFlight = true;
    this.o.engine
      .json('POST', `/exec/${encodeURIComponent(this.o.execId)}/resize?h=${size.rows}&w=${size.cols}`)
      .catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'resize not applied'))
      .finally(() => {
        this.resizeInFlight = false;
        this.flushResize();
      });
  }

  private async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (this.report !== null) {
      // Cut off before the report was whole: nothing of the user's was held.
      this.report = null;
      this.o.control.setLeader(null);
    }
    this.resolveStarted();
    this.releaseStdin();
    this.blocked.clear();
    if (!this.stdout.destroyed) this.stdout.push(null);
    if (this.stderr !== null && !this.stderr.destroyed) this.stderr.push(null);
    let exit: Exit;
    try {
      exit = await this.exitFor();
    } catch (err) {
      exit = { kind: 'error', error: new BridgeError('internal', 'internal error in podbridge; see the bridge log', { cause: err }) };
    }
    this.log.debug({ exit: exit.kind === 'code' ? exit.code : exit.kind === 'signal' ? exit.signal : exit.error.code }, 'docker exec finished');
    if (this.terminateReason !== null || this.o.afterEnd === undefined) return this.resolveExited(exit);
    this.o.afterEnd(exit).then(
      (explained) => this.resolveExited(explained),
      (err: unknown) => {
        this.log.warn({ err }, 'explaining the end of the session failed');
        this.resolveExited(exit);
      },
    );
  }

  private async exitFor(): Promise<Exit> {
    const place = this.o.place;
    if (this.terminateReason !== null) {
      return { kind: 'error', error: new BridgeError('stream-lost', `session in ${where(place)} was ended by podbridge: ${this.terminateReason}`, { detail: placeDetail(place) }) };
    }
    const inspected = await this.inspectExit();
    if (inspected.kind === 'lost') {
      const why = inspected.why ?? this.socketError?.message ?? null;
      return {
        kind: 'error',
        error: new BridgeError('stream-lost', `connection to the Docker Engine lost before ${where(place)} reported an exit status${why !== null ? ` (${oneLine(why, 120)})` : ''}`, {
          detail: { ...placeDetail(place), socketError: this.socketError?.message },
        }),
      };
    }
    const code = inspected.code;
    if (this.startError !== null || this.systemError !== '') {
      const words = `${this.systemError} ${this.startError?.toString('utf8') ?? ''}`.trim();
      return { kind: 'error', error: startFailure(place, words, code) };
    }
    if (code === null) {
      return { kind: 'error', error: new BridgeError('stream-lost', `${where(place)} ended the command without an exit status`, { detail: placeDetail(place) }) };
    }
    const signal = signalForExit({ code, requested: this.signalsRequested });
    return signal === null ? { kind: 'code', code } : { kind: 'signal', signal, coreDumped: false };
  }

  /** The exit code once the Engine stops reporting the exec as Running (bounded). */
  private async inspectExit(): Promise<{ kind: 'code'; code: number | null } | { kind: 'lost'; why: string | null }> {
    const deadline = Date.now() + this.timings.exitInspectMs;
    let pause = 10;
    for (;;) {
      let info: ExecInspect;
      try {
        info = (await this.o.engine.json<ExecInspect>('GET', `/exec/${encodeURIComponent(this.o.execId)}/json`)).body;
      } catch (err) {
        // 404: the exec went with its container (removed); the caller's afterEnd explains it.
        if (err instanceof EngineError && err.status === 404) return { kind: 'lost', why: 'the container is gone' };
        return { kind: 'lost', why: err instanceof Error ? err.message : String(err) };
      }
      if (info.Running !== true) return { kind: 'code', code: typeof info.ExitCode === 'number' ? info.ExitCode : null };
      if (Date.now() > deadline) return { kind: 'lost', why: 'the Engine still reports the command as running after its stream ended' };
      await delay(pause);
      pause = Math.min(pause * 2, 250);
    }
  }
}

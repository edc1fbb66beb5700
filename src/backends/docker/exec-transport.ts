/**
 * A Docker exec as a channel transport (exec/transport.ts), so that the one ExecProcess runs it:
 * the socket of `POST /exec/{id}/start`, hijacked.
 *
 * Wire (moby daemon/server/router/container/exec.go): with a TTY the socket carries the raw
 * terminal both ways; without one, output is multiplexed (multiplex.ts: 8-byte frame headers)
 * and input is raw. stdin EOF is a half-close of the socket (the Engine closes the process's
 * stdin when it reads EOF); the stream ends when the process and everything holding its output
 * has exited. Resizes are HTTP calls of their own (`POST /exec/{id}/resize`).
 *
 * The exit code is not on the stream: once it ends, `GET /exec/{id}/json` gives it when
 * `Running` is false, and it is handed on as the Status Kubernetes would have sent (so the exec
 * process reads one vocabulary). The Engine's own error text (stream 3) becomes a failure Status.
 * A stream we closed ourselves is not inspected: the exec process knows why it ended.
 *
 * Flow control: pause() pauses the socket, so the Engine stops reading the process. There is no
 * ping in this protocol: TCP keepalive (30 s) finds a dead Engine, so ping() only says the peer
 * is as alive as the socket.
 */
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../log.ts';
import { EventRelay, type ChannelTransport, type TransportEvents } from '../exec/transport.ts';
import { EngineError, type EngineClient } from './engine.ts';
import { FrameDemuxer, STDERR, STDOUT, SYSTEM_ERROR } from './multiplex.ts';

/** The Engine's own error text is one line of error, never more. */
const MAX_SYSTEM_ERROR_BYTES = 4096;

export interface DockerTransportOptions {
  engine: EngineClient;
  execId: string;
  socket: Duplex;
  /** Bytes that came with the 101 response head: the start of the stream. */
  head: Buffer;
  tty: boolean;
  log: Logger;
  /** After the stream ended, how long the Engine may keep reporting the exec as Running. */
  exitInspectMs: number;
}

interface ExecInspect {
  Running?: boolean;
  ExitCode?: number | null;
}

export class DockerExecTransport implements ChannelTransport {
  readonly description = 'Docker Engine exec (hijacked HTTP)';
  readonly subprotocol = 'docker';
  readonly canCloseStdin = true;

  private readonly relay = new EventRelay<TransportEvents>();
  private readonly demux: FrameDemuxer | null;
  private paused = false;
  private ended = false;
  private closedByUs = false;
  private socketError: Error | null = null;
  private systemError = '';

  constructor(private readonly o: DockerTransportOptions) {
    this.demux = o.tty ? null : new FrameDemuxer((stream, payload) => this.onFrame(stream, payload));
    const socket = o.socket;
    // An idle session must survive NAT and load balancers between us and a TCP Engine.
    const maybeNet = socket as Duplex & { setKeepAlive?: (on: boolean, ms: number) => void; setNoDelay?: (on: boolean) => void };
    maybeNet.setKeepAlive?.(true, 30_000);
    maybeNet.setNoDelay?.(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => (this.socketError ??= err));
    // 'end' is the Engine's half of the stream done; 'close' covers a socket cut without one.
    socket.on('end', () => void this.end());
    socket.on('close', () => void this.end());
    if (o.head.length > 0) this.onData(o.head);
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  attach(events: TransportEvents): void {
    this.relay.attach(events);
  }

  writeStdin(chunk: Buffer, callback: (err?: Error | null) => void): void {
    const socket = this.o.socket;
    if (socket.writableEnded || socket.destroyed) return callback(new Error('the exec stream is closed'));
    socket.write(chunk, (err) => callback(err ?? null));
  }

  endStdin(callback: () => void): void {
    const socket = this.o.socket;
    if (socket.writableEnded || socket.destroyed) return callback();
    // Half-close: the Engine reads EOF and closes the process's stdin; output keeps coming.
    socket.end(() => callback());
  }

  writeResize(cols: number, rows: number, callback: () => void): void {
    this.o.engine
      .json('POST', `/exec/${encodeURIComponent(this.o.execId)}/resize?h=${rows}&w=${cols}`)
      .catch((err: unknown) => this.o.log.debug({ err: (err as Error).message }, 'resize not applied'))
      .finally(callback);
  }

  pause(): void {
    this.paused = true;
    this.o.socket.pause();
  }

  resume(): void {
    this.paused = false;
    this.o.socket.resume();
  }

  ping(): void {
    this.relay.emit((e) => e.heard());
  }

  close(): void {
    this.terminate();
  }

  terminate(): void {
    this.closedByUs = true;
    this.o.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.relay.emit((e) => e.heard());
    if (this.demux !== null) this.demux.feed(chunk);
    else this.relay.emit((e) => e.data('stdout', chunk));
  }

  private onFrame(stream: number, payload: Buffer): void {
    if (stream === STDOUT) return this.relay.emit((e) => e.data('stdout', payload));
    if (stream === STDERR) return this.relay.emit((e) => e.data('stderr', payload));
    if (stream === SYSTEM_ERROR && this.systemError.length < MAX_SYSTEM_ERROR_BYTES) this.systemError += payload.toString('utf8');
  }

  private async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.closedByUs) return this.relay.emit((e) => e.closed(0, 'closed by podbridge'));
    let why: string | null = null;
    try {
      const inspected = await this.inspectExit();
      if (inspected.kind === 'lost') why = inspected.why ?? this.socketError?.message ?? null;
      else if (this.systemError !== '') this.status({ status: 'Failure', reason: 'InternalError', message: this.systemError });
      else if (inspected.code === 0) this.status({ status: 'Success' });
      else if (inspected.code !== null) this.status({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: String(inspected.code) }] } });
      else why = 'the Engine reported no exit code';
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
    this.relay.emit((e) => e.closed(0, why ?? ''));
  }

  private status(status: object): void {
    const bytes = Buffer.from(JSON.stringify(status));
    this.relay.emit((e) => e.data('status', bytes));
  }

  /** The exit code once the Engine stops reporting the exec as Running (bounded). */
  private async inspectExit(): Promise<{ kind: 'code'; code: number | null } | { kind: 'lost'; why: string | null }> {
    const deadline = Date.now() + this.o.exitInspectMs;
    let pause = 10;
    for (;;) {
      let info: ExecInspect;
      try {
        info = (await this.o.engine.json<ExecInspect>('GET', `/exec/${encodeURIComponent(this.o.execId)}/json`)).body;
      } catch (err) {
        // 404: the exec went with its container (removed); the backend's afterEnd explains it.
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

/**
 * A browser terminal as the session core's sink: every byte of output goes first into the
 * server-side screen and to the attached page (if any) and the observers. Bounded: while the
 * page's socket holds more than OWNER_HIGH_WATER unsent bytes, or the screen is more than
 * SCREEN_MAX_LAG behind, the write is not acknowledged, so the core's pump pauses the process; an
 * observer that falls behind by more than OBSERVER_MAX_BUFFERED is dropped and never slows the
 * owner. With no page attached (the grace period after a drop) the screen alone reads the
 * output, so the process runs on.
 */
import { Writable } from 'node:stream';
import { WebSocket } from 'ws';
import type { Exit } from '../../backends/backend.ts';
import { flushed } from '../../pipe.ts';
import type { SessionSink } from '../../session/sink.ts';
import { exitMessage, type ServerMessage } from './protocol.ts';
import type { Screen } from './screen.ts';

/** Unsent bytes on the owner's socket above which the process is paused. */
export const OWNER_HIGH_WATER = 256 * 1024;
/** Unsent bytes on an observer's socket above which it is dropped. */
export const OBSERVER_MAX_BUFFERED = 1024 * 1024;
/** Output the server-side screen may have yet to parse before the process is paused. */
export const SCREEN_MAX_LAG = 1024 * 1024;

export interface Audience {
  /** The page the terminal belongs to, when one is attached. */
  owner(): WebSocket | null;
  observers(): Iterable<WebSocket>;
  /** An observer too slow to keep up: disconnect it (the owner is never held back for it). */
  dropSlowObserver(ws: WebSocket): void;
}

export class TerminalOutput implements SessionSink {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** The acknowledgement of the latest write, held while the page or the screen is behind. */
  private held: (() => void) | null = null;
  /** Bytes handed to the screen that it has not parsed yet. */
  private screenLag = 0;
  /** Sockets joining (a resume, an observer): they get the screen, then what came after it. */
  private readonly joiners: Joiner[] = [];

  constructor(
    private readonly screen: Screen,
    private readonly audience: Audience,
    /** Called once, after the exit message went out. */
    private readonly onExit: (exit: Exit) => void,
  ) {
    this.stdout = this.makeStream();
    this.stderr = this.makeStream();
  }

  line(message: string, kind: 'notice' | 'error'): void {
    this.broadcast({ type: kind, message });
  }

  async flushed(signal?: AbortSignal): Promise<boolean> {
    const results = await Promise.all([flushed(this.stdout, signal), flushed(this.stderr, signal)]);
    return results.every(Boolean);
  }

  /** The core calls this after flushed(): every byte and line before it has been sent. */
  exit(exit: Exit): void {
    this.broadcast(exitMessage(exit));
    this.onExit(exit);
  }

  /**
   * Brings `ws` in: once every byte already printed is on the screen it gets the screen
   * serialized, then the bytes printed since it asked, then `ready()` makes it an owner or an
   * observer and it gets live output. Nothing is lost between the two, nothing sent twice.
   */
  join(ws: WebSocket, role: 'owner' | 'observer', ready: () => void): void {
    const joiner: Joiner = { ws, role, chunks: [], bytes: 0 };
    this.joiners.push(joiner);
    this.screen.afterPending(() => {
      const i = this.joiners.indexOf(joiner);
      if (i < 0) return; // dropped meanwhile
      this.joiners.splice(i, 1);
      if (ws.readyState === WebSocket.OPEN) {
        send(ws, JSON.stringify({ type: 'screen', data: this.screen.serialize() } satisfies ServerMessage));
        for (const chunk of joiner.chunks) send(ws, chunk);
        ready();
      }
      this.release();
    });
  }

  /** The owner changed (detached, resumed elsewhere): a write waiting for the old one goes on. */
  ownerChanged(): void {
    this.release();
  }

  /** A JSON message to the owner and every observer (and to joiners, after their screen). */
  broadcast(message: ServerMessage): void {
    const text = JSON.stringify(message);
    const owner = this.audience.owner();
    if (owner) send(owner, text);
    for (const o of this.audience.observers()) send(o, text);
    for (const j of this.joiners) j.chunks.push(text);
  }

  private makeStream(): Writable {
    return new Writable({
      highWaterMark: 64 * 1024,
      write: (chunk: Buffer, _encoding, done) => this.fanOut(chunk, done),
    });
  }

  private fanOut(chunk: Buffer, done: () => void): void {
    if (chunk.length === 0) {
      // flushed(): everything before is sent once the screen has it too.
      return this.screen.afterPending(() => done());
    }
    // The screen parses on its own time, a bounded way behind: one chunk at a time would cost a
    // timer tick per chunk (~4 MB/s).
    this.screenLag += chunk.length;
    this.screen.write(chunk, () => {
      this.screenLag -= chunk.length;
      this.release();
    });
    for (const j of this.joiners) {
      j.chunks.push(chunk);
      j.bytes += chunk.length;
    }
    for (const o of this.audience.observers()) {
      if (o.bufferedAmount > OBSERVER_MAX_BUFFERED) this.audience.dropSlowObserver(o);
      else send(o, chunk);
    }
    const owner = this.audience.owner();
    if (owner !== null && owner.readyState === WebSocket.OPEN) owner.send(chunk, { binary: true }, () => this.release());
    this.held = done;
    this.release();
  }

  /** Acknowledges the held write once the owner, a joining owner and the screen have room. */
  private release(): void {
    const held = this.held;
    if (held === null) return;
    const owner = this.audience.owner();
    if (owner !== null && owner.readyState === WebSocket.OPEN && owner.bufferedAmount > OWNER_HIGH_WATER) return;
    if (this.screenLag > SCREEN_MAX_LAG) return;
    if (this.joiners.some((j) => j.role === 'owner' && j.bytes > OWNER_HIGH_WATER)) return;
    for (const j of this.joiners.filter((x) => x.role === 'observer' && x.bytes > OBSERVER_MAX_BUFFERED)) {
      this.joiners.splice(this.joiners.indexOf(j), 1);
      this.audience.dropSlowObserver(j.ws);
    }
    this.held = null;
    held();
  }
}

interface Joiner {
  ws: WebSocket;
  role: 'owner' | 'observer';
  /** What was printed (or said) after it asked, to send after its screen. */
  chunks: Array<Buffer | string>;
  bytes: number;
}

function send(ws: WebSocket, data: string | Buffer): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.send(data, { binary: typeof data !== 'string' });
}

/**
 * What listens to a session without steering it: metrics (outcome, set-up time, bytes) and the
 * recording. The session calls these hooks at its few turning points; everything else (counting,
 * writing files) happens here, off the session's own code path.
 */
import type { Readable } from 'node:stream';
import type { Exit, TerminalSize, TtySpec } from '../backends/backend.ts';
import type { BridgeError } from '../errors.ts';
import type { Metrics, SessionOutcome } from './metrics.ts';

export interface SessionStart {
  kind: string;
  tty: TtySpec | null;
}

/** What is known once the request is authorized and about to run. */
export interface SessionPlace {
  conn: string;
  remote: string;
  identity: string;
  target: string;
  /** The command that runs (after forced commands), or null for a login shell. */
  command: string | null;
}

export interface SessionStreams {
  stdout: Readable;
  stderr: Readable | null;
  /** The client's bytes (the SSH channel). */
  input: Readable;
}

/** One session's listener. Every method is cheap and never throws into the session. */
export interface SessionTap {
  /** Before the process is started: a BridgeError refuses the session (e.g. --record-required
   *  and the recording cannot be opened). */
  beforeOpen(place: SessionPlace): BridgeError | null;
  /** The process runs. `end` ends the session from the bridge's side (fail-closed recording). */
  opened(streams: SessionStreams, end: (reason: string) => void): void;
  resize(size: TerminalSize): void;
  /** The session ended with `exit`; null if the client left before a process ran. Idempotent. */
  ended(exit: Exit | null): void;
}

/** Opens a recording for a TTY session; null when recording is off or not for this session. */
export interface RecorderFactory {
  open(start: SessionStart & SessionPlace): RecordingHandle | BridgeError | null;
}

export interface RecordingHandle {
  output(chunk: Buffer): void;
  input(chunk: Buffer): void;
  resize(size: TerminalSize): void;
  /** Called once with a reason if a write fails (disk full, cap reached with --record-required). */
  onFailure(cb: (reason: string) => void): void;
  close(exit: Exit | null): void;
}

export interface SessionTaps {
  start(start: SessionStart): SessionTap;
}

export function sessionTaps(deps: { backend: string; metrics: Metrics | null; recorder: RecorderFactory | null }): SessionTaps {
  const { backend, metrics, recorder } = deps;
  return {
    start(start) {
      let requestedAt = 0;
      let done = false;
      let recording: RecordingHandle | null = null;
      return {
        beforeOpen(place) {
          requestedAt = performance.now();
          if (!recorder) return null;
          const r = recorder.open({ ...start, ...place });
          if (r === null) return null;
          if ('code' in r) return r;
          recording = r;
          return null;
        },
        opened(streams, end) {
          if (requestedAt > 0) metrics?.setupSeconds.observe({ backend }, (performance.now() - requestedAt) / 1000);
          // Extra 'data' listeners see every chunk the pump moves and never change its flow control.
          if (metrics) {
            const out = (b: Buffer) => metrics.bytes.inc({ direction: 'out' }, b.length);
            streams.stdout.on('data', out);
            streams.stderr?.on('data', out);
            streams.input.on('data', (b: Buffer) => metrics.bytes.inc({ direction: 'in' }, b.length));
          }
          const rec = recording;
          if (rec) {
            streams.stdout.on('data', (b: Buffer) => rec.output(b));
            streams.input.on('data', (b: Buffer) => rec.input(b));
            rec.onFailure(end);
          }
        },
        resize(size) {
          recording?.resize(size);
        },
        ended(exit) {
          if (done) return;
          done = true;
          recording?.close(exit);
          if (!metrics) return;
          metrics.sessions.inc({ backend, kind: start.kind, outcome: outcomeOf(exit) });
          if (exit?.kind === 'error' && exit.error.code !== 'denied') metrics.backendErrors.inc({ backend, code: exit.error.code });
        },
      };
    },
  };
}

function outcomeOf(exit: Exit | null): SessionOutcome {
  if (exit === null) return 'abandoned';
  if (exit.kind === 'code') return exit.code === 0 ? 'exit-zero' : 'exit-nonzero';
  if (exit.kind === 'signal') return 'signal';
  return exit.error.code === 'denied' ? 'denied' : 'error';
}

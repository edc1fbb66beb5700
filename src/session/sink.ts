/**
 * How the session core talks to its front door (an SSH channel, a browser's WebSocket), and
 * nothing else: the core knows no SSH and no HTTP.
 */
import type { Writable } from 'node:stream';
import type { Exit } from '../backends/backend.ts';

export interface SessionSink {
  /** The command's output. Writes respect backpressure: `write()` returns false while the door is
   *  behind, and the core's pump pauses the process until 'drain'. */
  readonly stdout: Writable;
  /** Without a terminal, the command's stderr; with one the backend sends none. */
  readonly stderr: Writable;
  /** One line of the bridge's own for the user: a notice (idle warning, shutdown), or, once, why
   *  the bridge ended the session (`error`, followed by exit()). Never inside a line of output. */
  line(message: string, kind: 'notice' | 'error'): void;
  /** Resolves when everything written so far reached the door, or false if it went away or
   *  `signal` aborted first. */
  flushed(signal?: AbortSignal): Promise<boolean>;
  /** The session is over and its output flushed: report how it ended and close. Called once. */
  exit(exit: Exit): void;
}

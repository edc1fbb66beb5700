/**
 * What the exec stream cannot do by itself. Kubernetes exec has no signal channel, and closing
 * the stream kills nothing in the container: both need a second exec that finds the session's
 * processes (runc gives every exec its own session; PODBRIDGE_SESSION marks ours) and signals
 * them. This interface is where that goes; until then the stream-only control below says, at
 * debug level, what it could not do.
 */
import type { Logger } from '../../log.ts';
import type { ExecTarget } from './resolve.ts';

export interface ProcessControl {
  /** Deliver a signal (SSH name, no SIG prefix) to the session's foreground process group. */
  signal(name: string): void;
  /** Stop every process the session started. Called once, before the exec stream is closed;
   *  must not throw and should not take long (the caller does not wait forever). */
  terminateTree(reason: string): Promise<void>;
}

export interface ProcessControlContext {
  target: ExecTarget;
  /** The PODBRIDGE_SESSION value exported into the session's environment. */
  sessionTag: string;
  /** Already carries the target and session tag as bindings. */
  log: Logger;
}

export type ProcessControlFactory = (ctx: ProcessControlContext) => ProcessControl;

/** The control available from the exec stream alone: nothing. */
export const streamOnlyProcessControl: ProcessControlFactory = ({ log }) => ({
  signal(name) {
    log.debug({ signal: name }, 'kubernetes exec has no signal channel; signal not delivered');
  },
  async terminateTree(reason) {
    log.debug({ reason }, 'closing the exec stream; processes it started may keep running');
  },
});

/**
 * Audit events as JSON lines, separate from the operational log so they can be shipped and kept
 * on their own terms: who connected from where, how they authenticated, which pod they entered,
 * what they ran and how it ended.
 */
import { pino, type Logger as PinoLogger } from 'pino';

export type AuditEvent =
  | {
      event: 'connect';
      conn: string;
      remote: string;
      /** Browser door only (an SSH connect has no door field, as before): a page's terminal socket. */
      door?: 'web';
      identity?: string;
      /** The browser terminal (first 8 characters of its id), and how the page came to it. */
      terminal?: string;
      mode?: 'new' | 'resume' | 'observe';
    }
  | {
      event: 'auth';
      conn: string;
      remote: string;
      result: 'success' | 'failure';
      login: string;
      method: string;
      keyType?: string;
      fingerprint?: string;
      certKeyId?: string;
      certSerial?: string;
      identity?: string;
      reason?: string;
    }
  | { event: 'denied'; conn: string; remote: string; identity: string; target: string; reason: string }
  | {
      event: 'session-start';
      conn: string;
      remote: string;
      identity: string;
      target: string;
      kind: string;
      /** What ran: the forced command when there is one, else the client's command; null for a
       *  shell and for the sftp subsystem (`subsystem` says which). Never the bridge's launchers. */
      command: string | null;
      subsystem?: string;
      /** A forced command replaced the request: `key` (command=) or `certificate` (force-command). */
      forced: 'key' | 'certificate' | 'web-proxy' | false;
      /** Under a forced command: what the client asked for (its SSH_ORIGINAL_COMMAND). */
      requested?: string | null;
      tty: boolean;
    }
  | { event: 'session-end'; conn: string; remote: string; identity: string; target: string; kind: string; exit: string; durationMs: number }
  | { event: 'limit'; conn?: string; remote: string; limit: string; detail: string }
  /** One forwarded TCP connection (direct-tcpip), written when it ends or fails to open. */
  | {
      event: 'forward';
      conn: string;
      remote: string;
      identity: string;
      target: string;
      /** NAMESPACE/POD it reached; null when it never got that far. */
      pod: string | null;
      port: number;
      result: 'closed' | 'failed' | 'denied';
      reason?: string;
      bytesToPod: number;
      bytesFromPod: number;
      durationMs: number;
    }
  /** Someone started or stopped watching a browser terminal (read-only; the policy's `observe`). */
  | { event: 'observe'; conn: string; remote: string; identity: string; owner: string; target: string; action: 'joined' | 'left' }
  | {
      event: 'disconnect';
      conn: string;
      remote: string;
      durationMs: number;
      door?: 'web';
      identity?: string;
      terminal?: string;
      /** Browser door: why the socket went (closed by the page, connection lost, keepalive, ended, ...). */
      reason?: string;
      /** Browser door: the WebSocket close code (1006: no close frame, a drop or a cut). */
      code?: number;
    };

export interface Audit {
  emit(e: AuditEvent): void;
  close(): Promise<void>;
}

export function createAudit(destination: string | null): Audit {
  if (destination === null) return { emit: () => {}, close: async () => {} };
  // 0600: the trail holds every command line people typed, which can carry secrets. The mode
  // applies when the file is created; an existing file keeps the mode its operator gave it.
  const dest = destination === '-' ? pino.destination(1) : pino.destination({ dest: destination, append: true, mkdir: true, sync: false, mode: 0o600 });
  const out: PinoLogger = pino({ base: { audit: true }, timestamp: pino.stdTimeFunctions.isoTime, messageKey: 'event_message' }, dest);
  // Connections can close while the bridge shuts down; their last events must not throw into a
  // closed file.
  let closed = false;
  return {
    emit: (e) => {
      if (!closed) out.info(e);
    },
    close: () =>
      new Promise((resolve) => {
        if (closed) return resolve();
        closed = true;
        dest.flush?.();
        if (destination === '-') return resolve();
        dest.end();
        dest.once('close', () => resolve());
        setTimeout(resolve, 1000).unref();
      }),
  };
}

/**
 * One place that reports what happens on a connection or browser terminal: a log child and the
 * audit stream with the connection's id and remote address bound once, so no event forgets them.
 */
import type { AuditEvent } from '../audit.ts';
import type { Logger } from '../log.ts';

/** An audit event without the fields the reporter adds. */
export type ReportedEvent = AuditEvent extends infer E ? (E extends unknown ? Omit<E, 'conn' | 'remote'> : never) : never;

export interface EventReporter {
  /** Short id of the connection (SSH) or terminal (browser) in every log line and audit event. */
  readonly conn: string;
  readonly remote: string;
  readonly log: Logger;
  audit(e: ReportedEvent): void;
  /** The same connection, with more fields on every log line (identity, login). */
  child(fields: Record<string, unknown>): EventReporter;
}

export function eventReporter(log: Logger, audit: { emit(e: AuditEvent): void }, conn: string, remote: string): EventReporter {
  // Each child is made from `log` with every field so far, not as a child of the last one: pino
  // makes a child's prototype its parent logger, so a chain keeps every logger of the chain (the
  // pre-auth one for a session's whole life) where one flat child keeps one.
  const make = (fields: Record<string, unknown>): EventReporter => ({
    conn,
    remote,
    log: log.child(fields),
    audit: (e) => audit.emit({ ...e, conn, remote } as AuditEvent),
    child: (more) => make({ ...fields, ...more }),
  });
  return make({ conn, remote });
}

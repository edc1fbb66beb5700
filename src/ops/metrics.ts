/**
 * Prometheus metrics. Every number here is fed by a tap on events the bridge already has (audit
 * events, the SSH listener's accept and handshake, a session's tap), never by a branch inside a
 * backend or a front door. One registry per bridge, so bridges in one process (tests) stay apart.
 * Names and meanings: docs/operations.md, "Metrics".
 */
import client from 'prom-client';
import type { Audit, AuditEvent } from '../audit.ts';

/** Session set-up (authorized request to a running process) in seconds: Kubernetes exec is
 *  ~30-100 ms on a healthy cluster (docs/benchmarks.md), a cold node or a slow webhook seconds. */
const SETUP_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type SessionOutcome = 'exit-zero' | 'exit-nonzero' | 'signal' | 'error' | 'denied' | 'abandoned';

export class Metrics {
  readonly registry = new client.Registry();
  readonly connections = counter(this.registry, 'podbridge_connections_total',
    'TCP connections accepted by the SSH listener, by result (accepted, or the limit that dropped it)',
    ['result'] as const);
  readonly handshakes = counter(this.registry, 'podbridge_ssh_handshakes_total',
    'SSH key exchanges, by result: ok, or failed (the connection closed before the first key exchange completed)',
    ['result'] as const);
  readonly authAttempts = counter(this.registry, 'podbridge_auth_attempts_total',
    'Authentication requests by method and result (success, failure); the "none" probe is not counted',
    ['method', 'result'] as const);
  readonly sessions = counter(this.registry, 'podbridge_sessions_total',
    'Ended sessions by backend, kind (shell, exec, subsystem:sftp) and outcome (exit-zero, exit-nonzero, signal, error, denied, abandoned: the client left while it was starting)',
    ['backend', 'kind', 'outcome'] as const);
  readonly bytes = counter(this.registry, 'podbridge_session_bytes_total',
    'Session payload bytes: in = from clients to processes, out = from processes to clients',
    ['direction'] as const);
  readonly setupSeconds = new client.Histogram({
    name: 'podbridge_session_setup_seconds',
    help: 'Time from an authorized session request to a running process (pod lookup, exec upgrade, start), by backend',
    labelNames: ['backend'] as const,
    buckets: SETUP_BUCKETS,
    registers: [this.registry],
  });
  readonly backendErrors = counter(this.registry, 'podbridge_backend_errors_total',
    'Sessions that ended in a bridge-side error, by backend and error code (pod-not-found, forbidden, stream-lost, ...)',
    ['backend', 'code'] as const);
  readonly forwards = counter(this.registry, 'podbridge_forwards_total',
    'Port-forward (direct-tcpip) channel requests, by result (opened, refused, failed)',
    ['result'] as const);
  readonly recordingsFailed = counter(this.registry, 'podbridge_recordings_failed_total',
    'Session recordings that could not be opened or written (with --record-required the session was refused or ended)',
    ['stage'] as const);
  readonly limits = counter(this.registry, 'podbridge_limit_hits_total',
    'Connections or sessions refused or cut by a limit (max-startups, failure-backoff, login-grace-time, max-sessions-per-identity, ...)',
    ['limit'] as const);

  constructor(live: { connections(): number; sessions(): number; webSessions(): number; draining(): boolean }) {
    const gauge = (name: string, help: string, read: () => number) =>
      new client.Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge('podbridge_connections_open', 'TCP connections open now on the SSH listener', live.connections);
    // One series per front door (door="ssh", door="web"): sum() is every session, as the unlabelled
    // gauge was before browser terminals counted.
    new client.Gauge({
      name: 'podbridge_sessions_open',
      help: 'Sessions running now, by front door: ssh (SSH channels) or web (browser terminals, including those waiting to be resumed)',
      labelNames: ['door'] as const,
      registers: [this.registry],
      collect() {
        this.set({ door: 'ssh' }, live.sessions());
        this.set({ door: 'web' }, live.webSessions());
      },
    });
    gauge('podbridge_draining', '1 while the bridge drains after SIGTERM (not ready, accepting nothing new), else 0', () => (live.draining() ? 1 : 0));
    // process_* and nodejs_* as every Node exporter names them: dashboards expect those names.
    client.collectDefaultMetrics({ register: this.registry });
    // Every series a dashboard graphs exists from the start (0), so rate() works at once.
    this.connections.inc({ result: 'accepted' }, 0);
    this.handshakes.inc({ result: 'ok' }, 0);
    this.handshakes.inc({ result: 'failed' }, 0);
    this.bytes.inc({ direction: 'in' }, 0);
    this.bytes.inc({ direction: 'out' }, 0);
    this.recordingsFailed.inc({ stage: 'open' }, 0);
    this.recordingsFailed.inc({ stage: 'write' }, 0);
  }

  /** The audit stream is the bridge's event log: authentication results and limits come from it. */
  observeAudit(e: AuditEvent): void {
    switch (e.event) {
      case 'auth':
        if (e.method !== 'none') this.authAttempts.inc({ method: e.method, result: e.result });
        break;
      case 'limit':
        this.limits.inc({ limit: e.limit });
        break;
      case 'forward':
        // One event per forwarded connection when it closes (result "closed": it was opened),
        // or when it was refused (denied) or could not connect (failed).
        this.forwards.inc({ result: e.result === 'closed' ? 'opened' : e.result === 'denied' ? 'refused' : 'failed' });
        break;
      default:
        break;
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

function counter<L extends string>(registry: client.Registry, name: string, help: string, labelNames: readonly L[]): client.Counter<L> {
  return new client.Counter({ name, help, labelNames, registers: [registry] });
}

/** The audit object every module already calls, with the metrics listening in. */
export function tapAudit(audit: Audit, metrics: Metrics | null): Audit {
  if (metrics === null) return audit;
  return {
    emit: (e) => {
      metrics.observeAudit(e);
      audit.emit(e);
    },
    close: () => audit.close(),
  };
}

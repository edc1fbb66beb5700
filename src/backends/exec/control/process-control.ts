/**
 * What the exec stream cannot do by itself. Kubernetes exec has no signal channel, and closing
 * the stream kills nothing in the container: both go through a SECOND exec into the same
 * container that runs control-script.ts, which finds the session's processes (the PID the wrapper
 * reported, the sessions runc gave them, the PODBRIDGE_SESSION marker) and signals them.
 *
 * Failures never reach the user's session: a signal that cannot be delivered is logged; a cleanup
 * that cannot reach the container is retried in the background (the API server may come back)
 * and, when it cannot be done, the log says the cleanup could not be guaranteed and why.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Exit } from '../../backend.ts';
import type { BridgeError, ErrorCode } from '../../../errors.ts';
import type { Logger } from '../../../log.ts';
import { controlArgv, normalizeSignal, parseControlReport, type ControlReport, type Leader } from './control-script.ts';
import type { ExecTarget } from '../../kubernetes/api/target-resolution.ts';

export type { Leader } from './control-script.ts';

export interface ProcessControl {
  /** The wrapper reported the session's main process; null: no report came (the control then
   *  finds the main process by the PODBRIDGE_SESSION marker). Called at most once. */
  setLeader(leader: Leader | null): void;
  /** Deliver a signal (SSH name, no SIG prefix) to the session's main process. Never throws. */
  signal(name: string): void;
  /** Stop every process the session started: HUP, a grace period, KILL. Resolves after the first
   *  attempt (which the caller bounds); when the container could not be reached, further attempts
   *  go on in the background. Must not throw. */
  terminateTree(reason: string): Promise<void>;
}

/** What running the control script in the container gave. */
export type ScriptOutcome =
  | { ran: true; stdout: string; stderr: string; exit: Exit }
  /** The exec could not start or broke before the script reported (network, RBAC, no /bin/sh). */
  | { ran: false; error: BridgeError };

export type ScriptRunner = (argv: string[], timeoutMs: number) => Promise<ScriptOutcome>;

export interface ProcessControlContext {
  /** Where the session runs (a pod's container, or a Docker container): for the log only. */
  target: ExecTarget | { readonly name: string; readonly id: string };
  /** The PODBRIDGE_SESSION value exported into the session's environment. */
  sessionTag: string;
  /** Already carries the target and session tag as bindings. */
  log: Logger;
  /** Runs a command in the session's container as a separate exec, with the session's
   *  credentials (so Kubernetes RBAC applies to it exactly as to the session). */
  run?: ScriptRunner;
}

export type ProcessControlFactory = (ctx: ProcessControlContext) => ProcessControl;

/** The control available from the exec stream alone: nothing. */
export const streamOnlyProcessControl: ProcessControlFactory = ({ log }) => ({
  setLeader() {},
  signal(name) {
    log.debug({ signal: name }, 'kubernetes exec has no signal channel; signal not delivered');
  },
  async terminateTree(reason) {
    log.debug({ reason }, 'closing the exec stream; processes it started may keep running');
  },
});

export interface ExecProcessControlOptions {
  /** HUP first; KILL what is still there after this long. */
  graceMs: number;
  /** Pauses between further cleanup attempts when the container could not be reached. */
  retryDelaysMs: readonly number[];
  /** Aborted when the backend closes: background retries stop (and say so). */
  shutdown: AbortSignal;
  /** Background attempts register here so that close() can wait for them. */
  track(work: Promise<void>): void;
}

/** Default timings, exported for the documentation and the tests. */
export const DEFAULT_TERMINATE_GRACE_MS = 2_000;
/** About five minutes in all: an API server restart or a short network outage is covered. */
export const DEFAULT_CLEANUP_RETRY_DELAYS_MS: readonly number[] = [1_000, 2_000, 4_000, 8_000, 15_000, 30_000, 60_000, 60_000, 60_000, 60_000];
/** How long a signal or a cleanup waits for the wrapper's PID report before using the marker. */
const LEADER_WAIT_MS = 3_000;
/** Signals waiting for their exec; more are dropped (and logged). */
const MAX_QUEUED_SIGNALS = 8;
/** A signal's exec: connect, one `kill`, report. */
const SIGNAL_TIMEOUT_MS = 10_000;
/** The terminate script's own time on top of the grace period: scans, KILL rounds, the exec. */
const TERMINATE_OVERHEAD_MS = 8_000;

/** Errors after which trying again later may work (the API server or the network came back). */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['api-unreachable', 'stream-lost', 'exec-failed', 'internal']);
/** Errors that mean the processes are gone with their pod or container. */
const PROCESSES_GONE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['pod-not-found', 'container-not-running', 'container-not-found']);

/** How long one terminate attempt may take, for callers that bound it. */
export function terminateAttemptTimeoutMs(graceMs: number): number {
  return graceMs + TERMINATE_OVERHEAD_MS;
}

export function execProcessControl(options: ExecProcessControlOptions): ProcessControlFactory {
  return (ctx) => new ExecProcessControl(ctx, options);
}

class ExecProcessControl implements ProcessControl {
  private leader: Leader | null = null;
  private resolveLeader: () => void = () => {};
  private readonly leaderKnown = new Promise<void>((r) => (this.resolveLeader = r));
  /** Signals go out one after the other, in the order the client sent them. */
  private signals: Promise<void> = Promise.resolve();
  private queuedSignals = 0;
  private terminating: Promise<void> | null = null;
  private readonly log: Logger;

  constructor(
    private readonly ctx: ProcessControlContext,
    private readonly options: ExecProcessControlOptions,
  ) {
    this.log = ctx.log;
  }

  setLeader(leader: Leader | null): void {
    this.leader ??= leader;
    this.resolveLeader();
  }

  signal(name: string): void {
    const sig = normalizeSignal(name);
    if (sig === null) {
      this.log.info({ signal: name }, 'signal not delivered: not a signal podbridge sends');
      return;
    }
    // Each signal is an exec: a client that sends them without end must not queue execs without end.
    if (this.queuedSignals >= MAX_QUEUED_SIGNALS) {
      this.log.warn({ signal: sig, queued: this.queuedSignals }, 'signal not delivered: too many signals waiting');
      return;
    }
    this.queuedSignals += 1;
    this.signals = this.signals
      .then(() => this.sendSignal(sig))
      .catch((err: unknown) => this.log.warn({ signal: sig, err }, 'signal could not be delivered'))
      .finally(() => (this.queuedSignals -= 1));
  }

  terminateTree(reason: string): Promise<void> {
    this.terminating ??= this.startTerminate(reason).catch((err: unknown) => {
      this.log.warn({ reason, why: err instanceof Error ? err.message : String(err) }, 'process cleanup could not be guaranteed');
    });
    return this.terminating;
  }

  private async waitForLeader(): Promise<Leader | null> {
    await Promise.race([this.leaderKnown, delay(LEADER_WAIT_MS, undefined, { ref: false })]);
    return this.leader;
  }

  private async sendSignal(sig: string): Promise<void> {
    const run = this.ctx.run;
    if (run === undefined) return void this.log.debug({ signal: sig }, 'no way to run a second exec; signal not delivered');
    const leader = await this.waitForLeader();
    const outcome = await run(controlArgv('signal', this.ctx.sessionTag, leader, sig), SIGNAL_TIMEOUT_MS);
    const report = outcome.ran ? parseControlReport(outcome.stdout) : null;
    if (report?.fields.result === 'sent') {
      this.log.info({ signal: sig, pid: Number(report.fields.pid), found: report.fields.leader }, 'signal delivered');
      return;
    }
    const why = !outcome.ran ? outcome.error.message : report === null ? scriptTrouble(outcome) : signalTrouble(report);
    this.log.warn({ signal: sig, why }, 'signal could not be delivered');
  }

  private async startTerminate(reason: string): Promise<void> {
    const run = this.ctx.run;
    if (run === undefined) {
      this.log.warn({ reason, why: 'no way to run a second exec in the container' }, 'process cleanup could not be guaranteed');
      return;
    }
    this.log.debug({ reason }, 'ending the session\'s processes');
    const first = await this.attempt(run, reason, 1);
    if (first !== 'retry') return;
    // Not awaited: the API server may come back in minutes; the caller has its own deadline.
    this.options.track(this.retry(run, reason));
  }

  private async retry(run: ScriptRunner, reason: string): Promise<void> {
    let n = 1;
    for (const pause of this.options.retryDelaysMs) {
      try {
        await delay(pause, undefined, { signal: this.options.shutdown, ref: false });
      } catch {
        this.log.warn({ reason, attempts: n, why: 'podbridge stopped before the container could be reached' }, 'process cleanup could not be guaranteed');
        return;
      }
      n += 1;
      if ((await this.attempt(run, reason, n)) !== 'retry') return;
    }
    this.log.warn({ reason, attempts: n, why: 'the container could not be reached' }, 'process cleanup could not be guaranteed');
  }

  /** One run of the terminate script; 'retry' when the container could not be reached. */
  private async attempt(run: ScriptRunner, reason: string, n: number): Promise<'done' | 'retry'> {
    const leader = await this.waitForLeader();
    const outcome = await run(controlArgv('terminate', this.ctx.sessionTag, leader, String(this.options.graceMs)), terminateAttemptTimeoutMs(this.options.graceMs));
    if (!outcome.ran) {
      const code = outcome.error.code;
      if (PROCESSES_GONE.has(code)) {
        this.log.info({ reason, why: outcome.error.message }, 'session processes are gone with their container');
        return 'done';
      }
      if (RETRYABLE.has(code)) {
        this.log.info({ reason, attempt: n, why: outcome.error.message }, 'process cleanup could not reach the container; will try again');
        return 'retry';
      }
      this.log.warn({ reason, why: outcome.error.message }, 'process cleanup could not be guaranteed');
      return 'done';
    }
    const report = parseControlReport(outcome.stdout);
    if (report === null) {
      this.log.warn({ reason, why: scriptTrouble(outcome) }, 'process cleanup could not be guaranteed');
      return 'done';
    }
    const f = report.fields;
    const summary = { reason, found: num(f.found), killed: num(f.killed), left: num(f.left), leader: f.leader, grep: f.grep, attempt: n };
    if (f.proc === 'no') {
      this.log.warn({ ...summary, why: 'the container has no readable /proc' }, 'process cleanup could not be guaranteed');
    } else if (num(f.left) > 0) {
      this.log.warn({ ...summary, why: `${f.left} process(es) survived SIGKILL (another user's, or in uninterruptible sleep)` }, 'process cleanup could not be guaranteed');
    } else if (f.leader !== 'ok' && f.grep !== 'yes') {
      // Neither the PID report nor the marker: only what was left of the session could be found.
      this.log.warn({ ...summary, why: 'the main process was not identified and the image has no grep' }, 'process cleanup could not be guaranteed');
    } else {
      this.log.info(summary, 'session processes ended');
    }
    return 'done';
  }
}

function num(v: string | undefined): number {
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

function scriptTrouble(outcome: Extract<ScriptOutcome, { ran: true }>): string {
  const stderr = outcome.stderr.trim().split('\n').pop() ?? '';
  const exit = outcome.exit.kind === 'code' ? `exit ${outcome.exit.code}` : outcome.exit.kind === 'signal' ? `signal ${outcome.exit.signal}` : outcome.exit.error.message;
  return `the control script did not report (${exit}${stderr !== '' ? `: ${stderr}` : ''})`;
}

function signalTrouble(report: ControlReport): string {
  if (report.fields.result === 'no-leader') {
    return report.fields.leader === 'gone' ? 'the main process has already exited' : 'the main process could not be identified';
  }
  return `kill failed for PID ${report.fields.pid ?? '?'}`;
}

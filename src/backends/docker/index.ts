/**
 * The Docker backend: `ssh CONTAINER@bridge` (or PROJECT.SERVICE[+N]) into a container of a
 * Docker Engine, through our own Engine API client (engine.ts). The session runs on the same exec
 * process (exec/exec-process.ts, over exec-transport.ts) and under the same POSIX sh wrapper
 * (exec/command.ts) as on Kubernetes, because the Engine, like Kubernetes, has no API to signal
 * or kill an exec: signals and the cleanup of everything a session started go through a second
 * exec of exec/control/control-script.ts (exec/control/process-control.ts).
 * docs/docker.md and docs/lifecycle.md have the guarantees.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Backend, Exit, ListedPlace, ListScope, OpenContext, ProcessSpec, RemoteProcess } from '../backend.ts';
import type { Identity } from '../../identity.ts';
import { BridgeError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { Target } from '../../target.ts';
import { SESSION_TAG_VAR, buildExecCommand } from '../exec/command.ts';
import type { ExecProcess } from '../exec/exec-process.ts';
import { directArgv } from '../exec/plain-command.ts';
import { startUnderWrapper } from '../exec/shell-fallback.ts';
import {
  DEFAULT_CLEANUP_RETRY_DELAYS_MS,
  DEFAULT_TERMINATE_GRACE_MS,
  execProcessControl,
  streamOnlyProcessControl,
  terminateAttemptTimeoutMs,
  type ProcessControl,
  type ProcessControlFactory,
} from '../exec/control/process-control.ts';
import { dockerScriptRunner } from './control-exec.ts';
import { resolveEndpoint, type EndpointOptions, type ResolvedEndpoint } from './endpoint.ts';
import { EngineClient } from './engine.ts';
import { engineFailure, placeDetail, where, type DockerPlace } from './docker-errors.ts';
import { startExec, type DockerExecTimings } from './exec-start.ts';
import { inspectNow, listContainers, notRunning, resolveDocker, type ContainerInspect } from './resolve.ts';

export interface DockerBackendOptions extends EndpointOptions {
  /** Already resolved (tests); otherwise from the options and the Docker CLI's environment. */
  endpoint?: ResolvedEndpoint;
  /** Signals and process-tree cleanup; default: a second exec that runs control-script.ts. */
  processControl?: ProcessControlFactory;
  /** SIGHUP, then SIGKILL after this long, for a session the bridge ends; default 2 s. */
  terminateGraceMs?: number;
  /** Pauses between cleanup attempts while the Engine cannot be reached; about 5 min in all. */
  cleanupRetryDelaysMs?: readonly number[];
  /** Connect and answer timeout of every Engine call; default 10 s. */
  timeoutMs?: number;
  timings?: Partial<DockerExecTimings>;
}

/** How long the end of a session may wait for the container to explain it. */
const EXPLAIN_BUDGET_MS = 4_000;
/** Looks at the container after a SIGKILL exit, this far apart (2 s in all). */
const EXPLAIN_CHECKS = 8;
const EXPLAIN_RECHECK_MS = 250;
/** backend.close() waits this long for cleanups still running in the background. */
const CLOSE_WAIT_MS = 10_000;

export async function createDockerBackend(options: DockerBackendOptions, log: Logger): Promise<Backend> {
  const resolved = options.endpoint ?? resolveEndpoint(options);
  const engine = new EngineClient(resolved.endpoint, { timeoutMs: options.timeoutMs });
  const graceMs = options.terminateGraceMs ?? DEFAULT_TERMINATE_GRACE_MS;
  const shutdown = new AbortController();
  const background = new Set<Promise<void>>();
  const track = (work: Promise<void>): void => {
    background.add(work);
    const done = () => void background.delete(work);
    work.then(done, done);
  };
  const processControl =
    options.processControl ??
    execProcessControl({ graceMs, retryDelaysMs: options.cleanupRetryDelaysMs ?? DEFAULT_CLEANUP_RETRY_DELAYS_MS, shutdown: shutdown.signal, track });
  const timings: Partial<DockerExecTimings> = { terminateTreeTimeoutMs: terminateAttemptTimeoutMs(graceMs) + 2_000, ...options.timings };
  const live = new Set<ExecProcess>();
  if (resolved.endpoint.kind === 'tcp' && resolved.endpoint.tls === null) {
    log.warn({ endpoint: resolved.endpoint.url }, 'the Docker Engine is reached over plain TCP: anyone on that network path controls it (root on its host); use TLS');
  }
  // Say at start-up whether the Engine is there and new enough; sessions ask again if it was not.
  try {
    const version = await engine.apiVersion();
    log.debug({ endpoint: resolved.endpoint.url, source: resolved.source, apiVersion: version }, 'docker backend ready');
  } catch (err) {
    const e = engineFailure(err, resolved.endpoint, 'checking its API version');
    if (e.code === 'unsupported') throw e;
    log.warn({ endpoint: resolved.endpoint.url, why: e.message }, 'the Docker Engine cannot be reached yet; sessions will try again');
  }

  return {
    name: 'docker',
    defaultNamespace: '',
    defaultEngine: 'docker',

    describe() {
      return `docker: ${resolved.endpoint.url} (from ${resolved.source})`;
    },

    async open(target: Target, spec: ProcessSpec, ctx: OpenContext): Promise<RemoteProcess> {
      if (target.docker === undefined) {
        throw new BridgeError('unsupported', `this bridge serves a Docker Engine, not Kubernetes: log in as CONTAINER or PROJECT.SERVICE (without ${target.raw.slice(0, target.raw.indexOf('~') + 1) || 'a k8s~ prefix'})`);
      }
      let found;
      try {
        found = await resolveDocker(engine, target.docker);
      } catch (err) {
        throw engineFailure(err, resolved.endpoint, 'looking up the container');
      }
      const { place, inspect } = found;
      const denied = ctx.authorizeResolved?.({ namespace: '', pod: place.name, container: place.name, docker: place });
      if (denied) throw denied;
      const sessionTag = randomBytes(8).toString('hex');
      const slog = ctx.log.child({ container: place.name, containerId: place.id.slice(0, 12), sessionTag });
      const command = buildExecCommand(spec, { sessionTag, reportPid: true });
      if (command.droppedEnv.length > 0) slog.warn({ names: command.droppedEnv }, 'environment variables with invalid names dropped');
      const run = dockerScriptRunner(engine, place, slog);
      const control = processControl({ target: place, sessionTag, log: slog, run });
      const afterEnd = (ctl: ProcessControl) => (exit: Exit) => explainEnd(exit, { engine, place, inspect, control: ctl, track, log: slog });
      const tty = spec.tty === null ? null : { cols: spec.tty.cols, rows: spec.tty.rows };

      const started = await startUnderWrapper(
        () => startExec(engine, place, { argv: command.argv, tty, stdin: true }, { control, log: slog, pidReport: true, timings, afterEnd: afterEnd(control) }),
        () => {
          // A shell-less image: a plain command can still run, with TERM and the environment set
          // by the Engine itself; nothing can clean up after it (no shell for a second exec).
          const argv = directArgv(spec.command, where(place), { detail: placeDetail(place) });
          slog.warn({ argv0: argv[0] }, 'process cleanup could not be guaranteed: the image has no /bin/sh, so the command runs directly and no second exec can end what it leaves behind');
          const env = Object.entries(spec.env).map(([k, v]) => `${k}=${v}`);
          if (spec.tty !== null) env.push(`TERM=${spec.tty.term}`);
          env.push(`${SESSION_TAG_VAR}=${sessionTag}`);
          const ctl = streamOnlyProcessControl({ target: place, sessionTag, log: slog });
          return startExec(engine, place, { argv, tty, stdin: true, env }, { control: ctl, log: slog, pidReport: false, timings, afterEnd: afterEnd(ctl) });
        },
      );
      slog.info({ tty: spec.tty !== null, command: spec.command !== null, apiVersion: await engine.apiVersion() }, 'docker exec started');
      live.add(started);
      void started.exited.then(() => live.delete(started));
      return started;
    },

    async list(_identity: Identity, scope: ListScope): Promise<ListedPlace[]> {
      // Docker has no per-user view: the policy alone filters what the picker shows.
      return listContainers(engine, scope.limit);
    },

    async close() {
      await Promise.all([...live].map((p) => p.terminate('podbridge is shutting down')));
      shutdown.abort();
      if (background.size > 0) await Promise.race([Promise.all([...background]), delay(CLOSE_WAIT_MS, undefined, { ref: false })]);
      engine.close();
    },
  };
}

interface EndContext {
  engine: EngineClient;
  place: DockerPlace;
  inspect: ContainerInspect;
  control: ProcessControl;
  track(work: Promise<void>): void;
  log: Logger;
}

/**
 * The session ended without our asking. A SIGKILL exit (137), another 128+N, or a lost stream
 * may mean the container stopped, restarted or was removed: say so in one line. A lost stream
 * may leave the process running (the Engine went away; closing an exec kills nothing), so it is
 * cleaned up like a session the client left, retried in the background while the Engine is away.
 */
async function explainEnd(exit: Exit, ctx: EndContext): Promise<Exit> {
  const lost = exit.kind === 'error' && exit.error.code === 'stream-lost';
  const suspicious = lost || (exit.kind === 'code' && exit.code > 128);
  if (!suspicious) return exit;
  // The Engine records a stop a moment after the processes died (exit 137 can arrive first):
  // after a SIGKILL or a lost stream, look a few times before deciding it was not the container.
  const killed = lost || (exit.kind === 'code' && exit.code === 137);
  const deadline = Date.now() + EXPLAIN_BUDGET_MS;
  for (let check = 0; check < (killed ? EXPLAIN_CHECKS : 1); check++) {
    if (check > 0) await delay(EXPLAIN_RECHECK_MS);
    const left = deadline - Date.now();
    if (left <= 0) break;
    const now = await Promise.race([
      inspectNow(ctx.engine, ctx.place.id).then(
        (c) => ({ ok: true as const, c }),
        () => ({ ok: false as const }),
      ),
      delay(left, { ok: false as const }, { ref: false }),
    ]);
    if (!now.ok) break;
    const explained = compare(ctx.place, ctx.inspect, now.c);
    if (explained !== null) {
      ctx.log.info({ exit: exit.kind === 'code' ? exit.code : exit.kind, why: explained.message }, 'session ended with its container');
      return { kind: 'error', error: explained };
    }
  }
  if (lost) ctx.track(ctx.control.terminateTree('the exec stream was lost'));
  return exit;
}

function compare(place: DockerPlace, before: ContainerInspect, now: ContainerInspect | null): BridgeError | null {
  const detail = placeDetail(place);
  if (now === null) return new BridgeError('container-not-found', `${where(place)} was removed; the session ended with it`, { detail });
  if (now.State?.Running !== true) {
    const stopped = notRunning(now);
    const code = now.State?.ExitCode;
    return new BridgeError('container-not-running', `${where(place)} stopped${code !== undefined ? ` (exit code ${code})` : ''}; the session ended with it`, { detail: { ...detail, state: stopped?.message } });
  }
  if (before.State?.StartedAt !== undefined && now.State.StartedAt !== before.State.StartedAt) {
    return new BridgeError('container-not-running', `${where(place)} restarted; the session ended with its old processes`, { detail });
  }
  return null;
}

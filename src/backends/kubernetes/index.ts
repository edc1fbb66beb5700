/**
 * The Kubernetes backend: resolve the target to one container (api/), then run the session there
 * as an exec (exec/) over the channel layer (channel/: WebSocket v5, else SPDY/3.1, else WebSocket
 * v4, as kubectl). Signals and the cleanup of everything a
 * session started go through a second exec (control-exec.ts, running exec/control/); an end we did not cause is
 * explained from the pod (api/pod-check.ts). docs/lifecycle.md has the guarantees.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Backend, Exit, ForwardContext, ForwardedConnection, ListScope, OpenContext, ProcessSpec, RemoteProcess } from '../backend.ts';
import { BridgeError } from '../../errors.ts';
import type { Identity } from '../../identity.ts';
import type { Logger } from '../../log.ts';
import type { Target } from '../../target.ts';
import { KubeApiClient, type RequestHeaders } from './api/client.ts';
import { buildExecCommand } from '../exec/command.ts';
import { execScriptRunner } from './control-exec.ts';
import { openExecChannel } from './channel/connect.ts';
import { kubernetesExecWords, where } from './exec-errors.ts';
import { ExecProcess, type ExecProcessTimings } from '../exec/exec-process.ts';
import { loadKubeconfig } from './api/kubeconfig.ts';
import { compareWithSnapshot, readPodNow, snapshotOf, type PodSnapshot } from './api/pod-check.ts';
import {
  DEFAULT_CLEANUP_RETRY_DELAYS_MS,
  DEFAULT_TERMINATE_GRACE_MS,
  execProcessControl,
  streamOnlyProcessControl,
  terminateAttemptTimeoutMs,
  type ProcessControl,
  type ProcessControlFactory,
} from '../exec/control/process-control.ts';
import { directArgv } from '../exec/plain-command.ts';
import { startUnderWrapper } from '../exec/shell-fallback.ts';
import { resolveTargetWithPod, type ExecTarget } from './api/target-resolution.ts';
import { createPortForwarder } from './portforward/port-forward.ts';
import { listPlaces } from './api/list-places.ts';

export { findKubeconfig, type FoundKubeconfig } from './api/kubeconfig.ts';
export type { RequestHeaders } from './api/client.ts';
export type { ProcessControl, ProcessControlFactory, ScriptRunner } from '../exec/control/process-control.ts';

export interface KubernetesBackendOptions {
  /** Path to a kubeconfig; default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  kubeconfig?: string;
  /** Context to use instead of the kubeconfig's current-context. */
  context?: string;
  /** Namespace for targets that name none; default: the context's namespace, else `default`. */
  defaultNamespace?: string;
  /** Extra headers on every request made for one identity, for impersonation later
   *  (Impersonate-User / Impersonate-Group). Called once per session; default: none. */
  requestHeaders?: (identity: Identity) => RequestHeaders;
  /** Signals and process-tree cleanup; default: a second exec that runs control-script.ts. */
  processControl?: ProcessControlFactory;
  /** When a session ends for any reason but its process exiting, its processes get SIGHUP, then
   *  SIGKILL after this long; default 2 s. */
  terminateGraceMs?: number;
  /** Pauses between cleanup attempts while the container cannot be reached (API server down);
   *  default about five minutes in all. */
  cleanupRetryDelaysMs?: readonly number[];
  /** Connect and handshake timeout for every API call and the exec upgrade; default 10 s. */
  connectTimeoutMs?: number;
  /** How long a new forwarded connection waits for the runtime to refuse it before it counts
   *  as open; default in portforward/port-forward.ts. */
  forwardConfirmMs?: number;
  /** Keepalive and close timings of exec streams; defaults in exec/exec-process.ts. */
  timings?: Partial<ExecProcessTimings>;
}

const NO_HEADERS: RequestHeaders = Object.freeze({});

/** How long the end of a session may wait for the pod to explain it. */
const EXPLAIN_BUDGET_MS = 4_000;
/** Kubelets report a restarted container a moment after its processes died: look again. */
const EXPLAIN_RECHECK_MS = 1_000;
/** backend.close() waits this long for cleanups still running in the background. */
const CLOSE_WAIT_MS = 10_000;

export async function createKubernetesBackend(options: KubernetesBackendOptions, log: Logger): Promise<Backend> {
  const loaded = loadKubeconfig({ kubeconfig: options.kubeconfig, context: options.context });
  const api = new KubeApiClient(loaded.kc, { server: loaded.server, contextName: loaded.contextName }, options.connectTimeoutMs);
  const defaultNamespace = options.defaultNamespace ?? loaded.contextNamespace ?? 'default';
  const requestHeaders = options.requestHeaders ?? (() => NO_HEADERS);
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
  // terminate() must not close the stream before the cleanup had its grace period and its KILL.
  const timings: Partial<ExecProcessTimings> = { terminateTreeTimeoutMs: terminateAttemptTimeoutMs(graceMs) + 2_000, ...options.timings };
  const live = new Set<RemoteProcess>();
  const portForwarder = createPortForwarder(options.forwardConfirmMs);
  log.debug({ server: loaded.server, context: loaded.contextName, source: loaded.source, defaultNamespace }, 'kubernetes backend ready');

  return {
    name: 'kubernetes',
    defaultNamespace,

    describe() {
      return `kubernetes: ${loaded.server} (context "${loaded.contextName}" from ${loaded.source}), default namespace "${defaultNamespace}"`;
    },

    async open(target: Target, spec: ProcessSpec, ctx: OpenContext): Promise<RemoteProcess> {
      // The one place request headers are built from the identity; every call below carries them.
      const headers = requestHeaders(ctx.identity);
      const { target: execTarget, pod } = await resolveTargetWithPod(target, { api, headers, defaultNamespace });
      // Nothing runs in a place the access policy refuses, even when the login name looked fine.
      const denied = ctx.authorizeResolved?.(execTarget);
      if (denied) throw denied;
      const sessionTag = randomBytes(8).toString('hex');
      const slog = ctx.log.child({ ...execTarget, sessionTag });
      const command = buildExecCommand(spec, { sessionTag, reportPid: true });
      if (command.droppedEnv.length > 0) slog.warn({ names: command.droppedEnv }, 'environment variables with invalid names dropped');
      const control = processControl({ target: execTarget, sessionTag, log: slog, run: execScriptRunner(api, headers, execTarget, slog) });
      const snapshot = snapshotOf(pod, execTarget.container);
      const run = async (argv: string[], ctl: ProcessControl, pidReport: boolean) => {
        const transport = await openExecChannel(api, headers, { target: execTarget, argv, tty: spec.tty !== null }, slog);
        return new ExecProcess({
          transport,
          words: kubernetesExecWords(execTarget),
          tty: spec.tty,
          control: ctl,
          log: slog,
          timings,
          pidReport,
          afterEnd: (exit: Exit) => explainEnd(exit, { api, headers, target: execTarget, snapshot, control: ctl, track, log: slog }),
        });
      };
      // A shell-less image fails before the wrapper prints its PID report (first thing it does),
      // either as a refused upgrade (v4 through a kubelet) or as an immediate Status (v5).
      const withoutShell = () => {
        const ctl = streamOnlyProcessControl({ target: execTarget, sessionTag, log: slog, run: execScriptRunner(api, headers, execTarget, slog) });
        const argv = directArgv(spec.command, where(execTarget), { hint: 'add a shell with kubectl debug' });
        slog.warn({ argv0: argv[0] }, 'process cleanup could not be guaranteed: the image has no /bin/sh, so the command runs directly (without TERM or environment) and no second exec can end what it leaves behind');
        return run(argv, ctl, false);
      };
      // Bound, not an arrow: an arrow would put `command` (the wrapper script, ~1 KiB) into this
      // scope's context, which the process's afterEnd keeps for the session's life.
      const proc = await startUnderWrapper(run.bind(undefined, command.argv, control, true), withoutShell);
      slog.info({ protocol: proc.protocol, tty: spec.tty !== null, command: spec.command !== null }, 'exec started');
      live.add(proc);
      void proc.exited.then(() => live.delete(proc));
      return proc;
    },

    async probe() {
      // /version is readable by everyone (system:public-info-viewer): it tests reachability and TLS only.
      const res = await api.getJson('/version', NO_HEADERS);
      if (res.status !== 200) throw new Error(`API server ${loaded.server} answered ${res.status} to /version`);
    },
    async forward(target: Target, port: number, ctx: ForwardContext): Promise<ForwardedConnection> {
      const headers = requestHeaders(ctx.identity);
      const { target: place } = await resolveTargetWithPod(target, { api, headers, defaultNamespace });
      const denied = ctx.authorizeResolved?.(place);
      if (denied) throw denied;
      return portForwarder.forward(api, headers, place, port, ctx.log);
    },

    list(identity: Identity, scope: ListScope) {
      return listPlaces(api, requestHeaders(identity), scope, defaultNamespace);
    },

    async close() {
      await Promise.all([...live].map((p) => p.terminate('podbridge is shutting down')));
      await portForwarder.close();
      // Cleanups waiting for an unreachable API server stop retrying (and log that they gave up).
      shutdown.abort();
      if (background.size > 0) await Promise.race([Promise.all([...background]), delay(CLOSE_WAIT_MS, undefined, { ref: false })]);
    },
  };
}

interface EndContext {
  api: KubeApiClient;
  headers: RequestHeaders;
  target: ExecTarget;
  snapshot: PodSnapshot;
  control: ProcessControl;
  track(work: Promise<void>): void;
  log: Logger;
}

/**
 * The session ended without our asking. Exit 137 (SIGKILL), another 128+N, or a lost stream may
 * mean the pod was deleted or the container restarted: say so. A lost stream leaves the process
 * running in the container (closing an exec kills nothing), so it is cleaned up like a session
 * the client left, in the background and retried while the API server is unreachable.
 */
async function explainEnd(exit: Exit, ctx: EndContext): Promise<Exit> {
  const lost = exit.kind === 'error' && exit.error.code === 'stream-lost';
  const killed = (exit.kind === 'code' && exit.code === 137) || lost || (exit.kind === 'error' && exit.error.code === 'container-not-running');
  const suspicious = killed || (exit.kind === 'code' && exit.code > 128);
  if (!suspicious) return exit;
  const deadline = Date.now() + EXPLAIN_BUDGET_MS;
  let explained: BridgeError | null = null;
  let readable = true;
  for (let check = 0; check < (killed ? 3 : 1) && explained === null && readable; check++) {
    if (check > 0) await delay(EXPLAIN_RECHECK_MS);
    const left = deadline - Date.now();
    if (left <= 0) break;
    const now = await Promise.race([readPodNow(ctx.api, ctx.headers, ctx.target), delay(left, null, { ref: false })]);
    if (now === null) readable = false;
    else explained = compareWithSnapshot(ctx.target, ctx.snapshot, now);
  }
  if (explained !== null) {
    ctx.log.info({ exit: exit.kind === 'code' ? exit.code : exit.kind, why: explained.message }, 'session ended with its pod or container');
    return { kind: 'error', error: explained };
  }
  if (lost) ctx.track(ctx.control.terminateTree('the exec stream was lost'));
  return exit;
}

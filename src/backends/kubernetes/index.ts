/**
 * The Kubernetes backend: resolve the target to one container, then run the session there
 * through exec over WebSocket (v5, falling back to v4).
 */
import { randomBytes } from 'node:crypto';
import type { Backend, OpenContext, ProcessSpec, RemoteProcess } from '../backend.ts';
import type { Identity } from '../../identity.ts';
import type { Logger } from '../../log.ts';
import type { Target } from '../../target.ts';
import { KubeApiClient, type RequestHeaders } from './client.ts';
import { buildExecCommand } from './command.ts';
import { connectExec } from './exec-connect.ts';
import { ExecStream, type ExecStreamTimings } from './exec-stream.ts';
import { loadKubeconfig } from './kubeconfig.ts';
import { streamOnlyProcessControl, type ProcessControlFactory } from './process-control.ts';
import { resolveTarget } from './resolve.ts';

export { findKubeconfig, type FoundKubeconfig } from './kubeconfig.ts';
export type { RequestHeaders } from './client.ts';
export type { ProcessControl, ProcessControlFactory } from './process-control.ts';

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
  /** Signals and process-tree cleanup; default: what the exec stream alone can do (nothing). */
  processControl?: ProcessControlFactory;
  /** Connect and handshake timeout for every API call and the exec upgrade; default 10 s. */
  connectTimeoutMs?: number;
  /** Keepalive and close timings of exec streams; defaults in exec-stream.ts. */
  timings?: Partial<ExecStreamTimings>;
}

const NO_HEADERS: RequestHeaders = Object.freeze({});

export async function createKubernetesBackend(options: KubernetesBackendOptions, log: Logger): Promise<Backend> {
  const loaded = loadKubeconfig({ kubeconfig: options.kubeconfig, context: options.context });
  const api = new KubeApiClient(loaded.kc, { server: loaded.server, contextName: loaded.contextName }, options.connectTimeoutMs);
  const defaultNamespace = options.defaultNamespace ?? loaded.contextNamespace ?? 'default';
  const requestHeaders = options.requestHeaders ?? (() => NO_HEADERS);
  const processControl = options.processControl ?? streamOnlyProcessControl;
  const live = new Set<RemoteProcess>();
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
      const execTarget = await resolveTarget(target, { api, headers, defaultNamespace });
      // Nothing runs in a place the access policy refuses, even when the login name looked fine.
      const denied = ctx.authorizeResolved?.(execTarget);
      if (denied) throw denied;
      const sessionTag = randomBytes(8).toString('hex');
      const slog = ctx.log.child({ ...execTarget, sessionTag });
      const command = buildExecCommand(spec, { sessionTag });
      if (command.droppedEnv.length > 0) slog.warn({ names: command.droppedEnv }, 'environment variables with invalid names dropped');
      const control = processControl({ target: execTarget, sessionTag, log: slog });

      const proc = await connectExec(api, headers, { target: execTarget, argv: command.argv, tty: spec.tty !== null }, (opened) => {
        return new ExecStream({
          ws: opened.ws,
          version: opened.version,
          target: execTarget,
          tty: spec.tty,
          control,
          log: slog,
          timings: options.timings,
        });
      });
      slog.info({ protocol: proc.protocolVersion, tty: spec.tty !== null, command: spec.command !== null }, 'exec started');
      live.add(proc);
      void proc.exited.then(() => live.delete(proc));
      return proc;
    },

    async close() {
      await Promise.all([...live].map((p) => p.terminate('podbridge is shutting down')));
    },
  };
}

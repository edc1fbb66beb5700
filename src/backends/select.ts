/**
 * Picks the backend from the configuration. `auto` prefers Kubernetes when a kubeconfig or
 * in-cluster config exists and falls back to local shells, and says which and why. `docker`
 * serves a Docker Engine; `kubernetes+docker` (or the reverse) serves both, login names choosing
 * with a `docker~` / `k8s~` prefix and going to the first without one (docs/targets.md).
 */
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Backend, ListedPlace } from './backend.ts';
import { BridgeError } from '../errors.ts';
import type { Engine } from '../target.ts';
import { createLocalBackend } from './local.ts';
import { impersonationHeaders } from '../policy/index.ts';

export interface SelectedBackend {
  backend: Backend;
  /** Why this backend, for the start-up log. */
  reason: string;
}

export async function selectBackend(config: Config, log: Logger): Promise<SelectedBackend> {
  const local = (reason: string): SelectedBackend => ({
    backend: createLocalBackend({ terminateGraceMs: config.session.terminateGraceMs }, log),
    reason,
  });
  if (config.backend === 'local') return local('--backend local');
  if (config.backend === 'docker') return { backend: forEngine(await docker(config, log), 'docker'), reason: '--backend docker' };
  if (config.backend === 'kubernetes+docker' || config.backend === 'docker+kubernetes') {
    const kube = await kubernetes(config, log);
    const dock = await docker(config, log);
    const first: Engine = config.backend === 'docker+kubernetes' ? 'docker' : 'kubernetes';
    return { backend: combine(first, kube, dock), reason: `--backend ${config.backend}` };
  }

  // Loaded on demand: a local-only bridge never pays for the Kubernetes client.
  const kube = await import('./kubernetes/index.ts');
  const k8s = config.kubernetes;
  let reason: string;
  if (config.backend === 'kubernetes') reason = '--backend kubernetes';
  else if (k8s.kubeconfig) reason = `--kubeconfig ${k8s.kubeconfig}`;
  else {
    const found = kube.findKubeconfig();
    if (!found) return local('no kubeconfig ($KUBECONFIG, ~/.kube/config) and no in-cluster service account found');
    reason = `found ${found.source}`;
  }
  return { backend: forEngine(await kubernetes(config, log), 'kubernetes'), reason };
}

async function kubernetes(config: Config, log: Logger): Promise<Backend> {
  const kube = await import('./kubernetes/index.ts');
  const k8s = config.kubernetes;
  return kube.createKubernetesBackend(
    {
      kubeconfig: k8s.kubeconfig,
      context: k8s.context,
      defaultNamespace: k8s.namespace,
      // Every API call of a session carries the identity's Impersonate-* headers (none in
      // authorized_keys mode, where the bridge acts with its own credentials).
      requestHeaders: impersonationHeaders,
      terminateGraceMs: config.session.terminateGraceMs,
    },
    log,
  );
}

async function docker(config: Config, log: Logger): Promise<Backend> {
  const { createDockerBackend } = await import('./docker/index.ts');
  try {
    return await createDockerBackend({ ...config.docker, terminateGraceMs: config.session.terminateGraceMs }, log);
  } catch (err) {
    // A bad --docker-host or context is a start-up error with the setting's name in it.
    throw new Error(`docker backend: ${(err as Error).message}`);
  }
}

/** A backend that serves one engine refuses login names for the other with what to do. */
function forEngine(backend: Backend, engine: Engine): Backend {
  return {
    ...backend,
    defaultEngine: engine,
    describe: () => backend.describe(),
    open(target, spec, ctx) {
      if ((target.docker !== undefined) !== (engine === 'docker')) {
        const other = engine === 'docker' ? 'Kubernetes' : 'Docker';
        return Promise.reject(new BridgeError('unsupported', `this bridge serves no ${other}: "${target.raw.slice(0, 80)}" names a ${other} target; log in without its prefix`));
      }
      return backend.open(target, spec, ctx);
    },
    ...(backend.list ? { list: backend.list.bind(backend) } : {}),
    close: () => backend.close(),
  };
}

/** Kubernetes and Docker behind one bridge: the login name's engine picks the backend. */
function combine(first: Engine, kube: Backend, dock: Backend): Backend {
  return {
    name: first === 'docker' ? 'docker' : 'kubernetes',
    defaultNamespace: kube.defaultNamespace,
    defaultEngine: first,
    describe: () => `${kube.describe()}; ${dock.describe()}`,
    open: (target, spec, ctx) => (target.docker !== undefined ? dock.open(target, spec, ctx) : kube.open(target, spec, ctx)),
    list: async (identity, scope) => {
      const [k, d] = await Promise.all([kube.list?.(identity, scope) ?? [], dock.list?.(identity, scope) ?? []]);
      // Names of the second engine need its prefix (target.ts).
      const prefixed = (places: ListedPlace[], engine: Engine) => (engine === first ? places : places.map((p) => ({ ...p, target: `${engine === 'docker' ? 'docker' : 'k8s'}~${p.target}` })));
      return [...prefixed(k, 'kubernetes'), ...prefixed(d, 'docker')].slice(0, scope.limit);
    },
    close: async () => {
      await Promise.all([kube.close(), dock.close()]);
    },
  };
}

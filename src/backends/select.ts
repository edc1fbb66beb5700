/**
 * Picks the backend from the configuration. `auto` prefers Kubernetes when a kubeconfig or
 * in-cluster config exists and falls back to local shells, and says which and why.
 */
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Backend } from './backend.ts';
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
  const backend = await kube.createKubernetesBackend(
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
  return { backend, reason };
}

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
  // Loaded on demand: a local-only bridge never pays for the Kubernetes client.
  const kube = () => import('./kubernetes/index.ts');
  const createKubernetesBackend = async (o: Parameters<Awaited<ReturnType<typeof kube>>['createKubernetesBackend']>[0], l: Logger) =>
    (await kube()).createKubernetesBackend(o, l);
  const k8s = config.kubernetes;
  // Every API call made for a session carries the identity's Impersonate-* headers (none in
  // authorized_keys mode, where the bridge acts with its own credentials).
  const kubeOptions = {
    kubeconfig: k8s.kubeconfig,
    context: k8s.context,
    defaultNamespace: k8s.namespace,
    requestHeaders: impersonationHeaders,
    terminateGraceMs: config.session.terminateGraceMs,
  };
  const localOptions = { terminateGraceMs: config.session.terminateGraceMs };
  switch (config.backend) {
    case 'local':
      return { backend: createLocalBackend(localOptions, log), reason: '--backend local' };
    case 'kubernetes':
      return { backend: await createKubernetesBackend(kubeOptions, log), reason: '--backend kubernetes' };
    case 'auto': {
      if (k8s.kubeconfig) {
        return { backend: await createKubernetesBackend(kubeOptions, log), reason: `--kubeconfig ${k8s.kubeconfig}` };
      }
      const found = (await kube()).findKubeconfig();
      if (found) return { backend: await createKubernetesBackend(kubeOptions, log), reason: `found ${found.source}` };
      return {
        backend: createLocalBackend(localOptions, log),
        reason: 'no kubeconfig ($KUBECONFIG, ~/.kube/config) and no in-cluster service account found',
      };
    }
  }
}

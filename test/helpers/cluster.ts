/** A fake cluster (the protocol-faithful fake kube-apiserver) with the pods the tests talk to. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeKubeApiServer, type FakeApiServerOptions } from '../fixtures/kube-apiserver/index.ts';

export interface TestCluster {
  api: FakeKubeApiServer;
  kubeconfig: string;
  dir: string;
  stop(): Promise<void>;
}

export async function startTestCluster(opts: FakeApiServerOptions & { protocols?: string[] } = {}): Promise<TestCluster> {
  const api = await FakeKubeApiServer.start({
    // RBAC-style: exec into team-a/secret-1 is not allowed for anyone.
    authorize: (a) => (a.resource === 'pods' && a.subresource === 'exec' && a.name === 'secret-1' ? '' : true),
    ...opts,
  });
  if (opts.protocols) api.setExecProtocols(opts.protocols);
  api.addPod({ namespace: 'team-a', name: 'web-1', labels: { app: 'web' }, containers: [{ name: 'app' }, { name: 'sidecar' }] });
  api.addPod({ namespace: 'team-a', name: 'web-old', labels: { app: 'web' }, phase: 'Pending', nodeName: null, containers: [{ name: 'app' }] });
  api.addPod({
    namespace: 'team-a',
    name: 'annotated',
    annotations: { 'kubectl.kubernetes.io/default-container': 'main' },
    containers: [{ name: 'init-helper' }, { name: 'main' }],
  });
  api.addPod({ namespace: 'team-a', name: 'pending-1', labels: { app: 'idle' }, phase: 'Pending', containers: [{ name: 'app' }] });
  api.addPod({ namespace: 'team-a', name: 'crashing', containers: [{ name: 'app', state: { waiting: 'CrashLoopBackOff' } }] });
  api.addPod({ namespace: 'team-a', name: 'secret-1', containers: [{ name: 'app' }] });
  api.addPod({ namespace: 'team-a', name: 'distroless', containers: [{ name: 'app', noShell: true }] });
  api.addPod({ namespace: 'team-b', name: 'api-0', containers: [{ name: 'api' }] });
  api.addWorkload({ kind: 'Deployment', namespace: 'team-a', name: 'web', matchLabels: { app: 'web' } });
  api.addWorkload({ kind: 'Deployment', namespace: 'team-a', name: 'idle', matchLabels: { app: 'idle' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-cluster-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  api.writeKubeconfig(kubeconfig, { namespace: 'team-a' });
  return {
    api,
    kubeconfig,
    dir,
    stop: async () => {
      await api.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

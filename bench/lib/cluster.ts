/**
 * The cluster every path talks to: the fake kube-apiserver fixture started as its own process (so
 * its CPU is not the bench process's and its per-exec processes are not the bridge's), or a real
 * cluster named by --kubeconfig.
 */
import { compiled } from '../../test/helpers/paths.ts';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { startChild, stopChild, withTimeout } from './proc.ts';

export interface PodTarget {
  namespace: string;
  pod: string;
  /** null: the pod's default container. */
  container: string | null;
}

export interface Cluster {
  kind: 'fixture' | 'kubeconfig';
  kubeconfig: string;
  server: string;
  target: PodTarget;
  /** kubectl --cache-dir holding discovery documents (see writeDiscoveryCache). */
  kubectlCacheDir: string;
  /** The fixture's pid (its own process: the pod "containers" are its children). */
  pid: number | null;
  stop(): Promise<void>;
}

export const FIXTURE_TARGET: PodTarget = { namespace: 'bench', pod: 'shell', container: 'main' };

export async function startFixture(root: string, dir: string): Promise<Cluster> {
  fs.mkdirSync(dir, { recursive: true });
  const kubeconfig = path.join(dir, 'kubeconfig');
  const podsFile = path.join(dir, 'pods.json');
  const t = FIXTURE_TARGET;
  fs.writeFileSync(podsFile, JSON.stringify({ namespaces: [t.namespace], pods: [{ namespace: t.namespace, name: t.pod, containers: [{ name: t.container }] }] }));
  const child: ChildProcess = startChild(
    process.execPath,
    [compiled('test/fixtures/kube-apiserver/main.ts'), '--port', '0', '--kubeconfig-out', kubeconfig, '--pods', podsFile, '--namespace', t.namespace],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const lines = readline.createInterface({ input: child.stdout! });
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      lines.once('line', (l) => resolve(l.trim()));
      child.once('exit', (code) => reject(new Error(`fake kube-apiserver exited (${code}): ${stderr}`)));
    }),
    30_000,
    'starting the fake kube-apiserver',
  );
  // Keep draining its output so a chatty fixture never blocks on a full pipe.
  lines.on('line', () => undefined);
  const kubectlCacheDir = path.join(dir, 'kubectl-cache');
  writeDiscoveryCache(kubectlCacheDir, url);
  return {
    kind: 'fixture',
    kubeconfig,
    server: url,
    target: t,
    kubectlCacheDir,
    pid: child.pid ?? null,
    // SIGTERM: the fixture kills its "container" processes and removes its temp dir.
    stop: () => stopChild(child, 'SIGTERM', 15_000),
  };
}

export function useKubeconfig(kubeconfig: string, server: string, target: PodTarget, dir: string): Cluster {
  return {
    kind: 'kubeconfig',
    kubeconfig,
    server,
    target,
    kubectlCacheDir: path.join(dir, 'kubectl-cache'),
    pid: null,
    stop: async () => undefined,
  };
}

/**
 * kubectl resolves "pods" through API discovery (/api/v1), which the fixture does not serve
 * (it answers /api and /apis only). kubectl's disk cache of discovery documents is trusted for
 * six hours, so writing the two documents kubectl needs lets an unmodified kubectl exec into the
 * fixture with no proxy on the data path. A real cluster fills this cache on the first call.
 */
export function writeDiscoveryCache(cacheDir: string, server: string): void {
  const host = server.replace(/^https?:\/\//, '').replace(/[^(\w/.)]/g, '_');
  const dir = path.join(cacheDir, 'discovery', host);
  fs.mkdirSync(path.join(dir, 'v1'), { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'servergroups.json'),
    JSON.stringify({
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [{ name: '', versions: [{ groupVersion: 'v1', version: 'v1' }], preferredVersion: { groupVersion: 'v1', version: 'v1' } }],
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'v1', 'serverresources.json'),
    JSON.stringify({
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: 'v1',
      resources: [
        { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'] },
        { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
        { name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace', verbs: ['get', 'list'], shortNames: ['ns'] },
      ],
    }),
  );
}

/** `ns.pod+container`, the bridge's login-name grammar. */
export function loginName(t: PodTarget): string {
  return `${t.namespace}.${t.pod}${t.container !== null ? `+${t.container}` : ''}`;
}

export function parsePodTarget(text: string): PodTarget {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) throw new Error(`--target: expected NAMESPACE/POD[/CONTAINER], got "${text}"`);
  return { namespace: parts[0] as string, pod: parts[1] as string, container: parts[2] ?? null };
}

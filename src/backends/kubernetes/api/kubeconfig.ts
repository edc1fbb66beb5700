/**
 * Where the cluster connection comes from: an explicit file, $KUBECONFIG, ~/.kube/config or the
 * pod's service account, in the order kubectl and client-node's `loadFromDefault()` use.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
// The deep import (with patches/@kubernetes+client-node+1.4.0+001) loads the kubeconfig code without
// the generated API models: the bridge's start-up heap is 21 MB smaller, and every full garbage
// collection during a transfer marks that much less (docs/benchmarks.md).
import { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { BridgeError } from '../../../errors.ts';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeconfigLookup {
  env?: NodeJS.ProcessEnv;
  homeDir?: string;
  serviceAccountDir?: string;
}

export interface FoundKubeconfig {
  /** Human words for the start-up log: which config and why it was chosen. */
  source: string;
  /** The files to load, in order; empty for the in-cluster service account. */
  files: string[];
}

/** Which configuration `loadFromDefault()` would use, or null when there is none (client-node
 *  would then silently fall back to http://localhost:8080, which we never want). */
export function findKubeconfig(lookup: KubeconfigLookup = {}): FoundKubeconfig | null {
  const env = lookup.env ?? process.env;
  const list = env.KUBECONFIG;
  if (list !== undefined && list !== '') {
    const files = list.split(path.delimiter).filter((f) => f !== '');
    const existing = files.filter(isFile);
    // Like kubectl: a set $KUBECONFIG is the whole answer, never silently another cluster's file.
    return existing.length > 0 ? { source: `$KUBECONFIG (${existing.join(path.delimiter)})`, files: existing } : null;
  }
  const home = lookup.homeDir ?? env.HOME ?? os.homedir();
  const homeConfig = path.join(home, '.kube', 'config');
  if (isFile(homeConfig)) return { source: `~/.kube/config (${homeConfig})`, files: [homeConfig] };
  const saDir = lookup.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host !== undefined && host !== '' && isFile(path.join(saDir, 'token'))) {
    return {
      source: `in-cluster service account (${saDir}, https://${host}:${env.KUBERNETES_SERVICE_PORT ?? '443'})`,
      files: [],
    };
  }
  return null;
}

export interface LoadedKubeconfig {
  kc: KubeConfig;
  source: string;
  contextName: string;
  /** The API server base URL, without a trailing slash. */
  server: string;
  /** The context's namespace, if it names one. */
  contextNamespace: string | null;
}

export function loadKubeconfig(options: { kubeconfig?: string; context?: string }): LoadedKubeconfig {
  const kc = new KubeConfig();
  let source: string;
  if (options.kubeconfig !== undefined) {
    source = options.kubeconfig;
    if (!isFile(options.kubeconfig)) {
      throw configError(`kubeconfig ${options.kubeconfig} does not exist or is not a file; check --kubeconfig`);
    }
    try {
      kc.loadFromFile(options.kubeconfig);
    } catch (err) {
      throw configError(`cannot load kubeconfig ${options.kubeconfig}: ${messageOf(err)}`, err);
    }
  } else {
    const found = findKubeconfig();
    if (found === null) {
      const list = process.env.KUBECONFIG;
      throw configError(
        list !== undefined && list !== ''
          ? `$KUBECONFIG names no existing file (${list}); fix it or pass --kubeconfig`
          : 'no Kubernetes configuration found: pass --kubeconfig, set $KUBECONFIG, create ~/.kube/config, or run podbridge in a pod with a service account',
      );
    }
    source = found.source;
    try {
      if (found.files.length > 0) loadMerged(kc, found.files);
      else kc.loadFromCluster();
    } catch (err) {
      throw configError(`cannot load kubeconfig from ${source}: ${messageOf(err)}`, err);
    }
  }

  if (options.context !== undefined) {
    if (kc.getContextObject(options.context) === null) {
      const names = kc.getContexts().map((c) => c.name);
      throw configError(
        `context "${options.context}" not found in kubeconfig ${source}; ${names.length > 0 ? `available: ${names.join(', ')}` : 'it defines no contexts'}`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  const contextName = kc.getCurrentContext();
  const context = kc.getContextObject(contextName);
  if (context === null) {
    throw configError(`kubeconfig ${source} has no current context; pass --context`);
  }
  const cluster = kc.getCurrentCluster();
  if (cluster === null || cluster.server === '') {
    throw configError(`context "${contextName}" in kubeconfig ${source} names no cluster with a server URL`);
  }
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    // client-node refuses plain HTTP unless TLS verification is explicitly off.
    throw configError(
      `cluster "${cluster.name}" uses plain ${cluster.server}; use https, or set insecure-skip-tls-verify: true for a local test cluster`,
    );
  }
  return {
    kc,
    source,
    contextName,
    server: cluster.server.replace(/\/+$/, ''),
    contextNamespace: context.namespace !== undefined && context.namespace.trim() !== '' ? context.namespace.trim() : null,
  };
}

/** Merges files the way kubectl does (client-node's `loadFromDefault` differs): the first file
 *  that sets a current-context wins, and the first definition of each name wins. Missing files in
 *  $KUBECONFIG were already skipped, as kubectl skips them. */
function loadMerged(kc: KubeConfig, files: readonly string[]): void {
  const [first, ...rest] = files;
  if (first === undefined) return;
  kc.loadFromFile(first);
  for (const file of rest) {
    const next = new KubeConfig();
    next.loadFromFile(file);
    const current = kc.getCurrentContext();
    if (current === undefined || current === '') kc.setCurrentContext(next.getCurrentContext());
    for (const c of next.getClusters()) if (kc.getCluster(c.name) === null) kc.addCluster(c);
    for (const u of next.getUsers()) if (kc.getUser(u.name) === null) kc.addUser(u);
    for (const c of next.getContexts()) if (kc.getContextObject(c.name) === null) kc.addContext(c);
  }
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] ?? String(err) : String(err);
}

// A start-up problem of the operator's configuration; no closer ErrorCode exists yet.
function configError(message: string, cause?: unknown): BridgeError {
  return new BridgeError('api-unreachable', message, { cause });
}

/**
 * Target -> the one container we exec into: namespace, pod, container. Every way this can fail
 * becomes one line that names the namespace, pod, workload or container and says what to do.
 */
import type { z } from 'zod';
import { BridgeError } from '../../../errors.ts';
import type { Target, WorkloadKind } from '../../../target.ts';
import { forbidden, unauthorized, unexpectedResponse } from './api-errors.ts';
import type { KubeApiClient, RequestHeaders } from './client.ts';
import { PodListSchema, PodSchema, WorkloadSchema, type ContainerStatus, type Pod } from './objects.ts';
import { labelSelectorQuery, pickPod } from './pod-selection.ts';
import { parseStatus } from '../../exec/kube-status.ts';

export interface ExecTarget {
  namespace: string;
  pod: string;
  container: string;
}

export interface ResolveContext {
  api: KubeApiClient;
  /** Per-identity headers, sent with every request. */
  headers: RequestHeaders;
  /** Used when the target names no namespace. */
  defaultNamespace: string;
}

/** The annotation kubectl reads to pick a pod's default container. */
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

interface WorkloadApi {
  /** API path prefix of its group/version. */
  group: string;
  /** Resource (plural) name. */
  resource: string;
}

const WORKLOAD_API: Readonly<Record<WorkloadKind, WorkloadApi>> = {
  deployment: { group: '/apis/apps/v1', resource: 'deployments' },
  statefulset: { group: '/apis/apps/v1', resource: 'statefulsets' },
  daemonset: { group: '/apis/apps/v1', resource: 'daemonsets' },
  replicaset: { group: '/apis/apps/v1', resource: 'replicasets' },
  job: { group: '/apis/batch/v1', resource: 'jobs' },
};

/** Also returns the pod as read, so the end of a session can be compared with its start. */
export async function resolveTargetWithPod(target: Target, ctx: ResolveContext): Promise<{ target: ExecTarget; pod: Pod }> {
  const namespace = target.namespace ?? ctx.defaultNamespace;
  const pod =
    target.ref.kind === 'pod'
      ? await getPod(ctx, namespace, target.ref.name)
      : await podOfWorkload(ctx, namespace, target.ref.kind, target.ref.name);
  checkPodRunning(pod, namespace);
  const container = chooseContainer(pod, namespace, target.container);
  checkContainerRunning(pod, namespace, container);
  return { target: { namespace, pod: pod.metadata.name, container }, pod };
}

const enc = encodeURIComponent;

async function getPod(ctx: ResolveContext, namespace: string, name: string): Promise<Pod> {
  const path = `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`;
  const res = await ctx.api.getJson(path, ctx.headers);
  if (res.status === 404) {
    await assertNamespaceExists(ctx, namespace);
    throw new BridgeError(
      'pod-not-found',
      `pod "${name}" not found in namespace "${namespace}"; list pods with: kubectl get pods -n ${namespace}`,
      { detail: { namespace, pod: name } },
    );
  }
  checkAnswer(ctx, res.status, res.body, `GET ${path}`, `cannot get pod "${name}" in namespace "${namespace}"`);
  return parseObject(PodSchema, res.body, `pod "${name}"`);
}

async function podOfWorkload(ctx: ResolveContext, namespace: string, kind: WorkloadKind, name: string): Promise<Pod> {
  const { group, resource } = WORKLOAD_API[kind];
  const path = `${group}/namespaces/${enc(namespace)}/${resource}/${enc(name)}`;
  const res = await ctx.api.getJson(path, ctx.headers);
  if (res.status === 404) {
    await assertNamespaceExists(ctx, namespace);
    throw new BridgeError(
      'workload-not-found',
      `${kind} "${name}" not found in namespace "${namespace}"; list them with: kubectl get ${resource} -n ${namespace}`,
      { detail: { namespace, kind, name } },
    );
  }
  checkAnswer(ctx, res.status, res.body, `GET ${path}`, `cannot get ${kind} "${name}" in namespace "${namespace}"`);
  const workload = parseObject(WorkloadSchema, res.body, `${kind} "${name}"`);

  const selector = labelSelectorQuery(workload.spec.selector);
  if (selector === null) {
    throw new BridgeError(
      'no-running-pod',
      `${kind} "${name}" in namespace "${namespace}" has an empty pod selector; name a pod instead`,
      { detail: { namespace, kind, name } },
    );
  }
  const podsPath = `/api/v1/namespaces/${enc(namespace)}/pods`;
  const list = await ctx.api.getJson(podsPath, ctx.headers, new URLSearchParams({ labelSelector: selector }));
  checkAnswer(ctx, list.status, list.body, `GET ${podsPath}`, `cannot list pods in namespace "${namespace}"`);
  const pods = parseObject(PodListSchema, list.body, `pods of ${kind} "${name}"`).items ?? [];
  const pod = pickPod(pods);
  if (pod === null) {
    const why =
      pods.length === 0
        ? `no pod matches its selector ${selector}`
        : `${pods.length} ${pods.length === 1 ? 'pod matches' : 'pods match'} its selector, none is Running`;
    throw new BridgeError(
      'no-running-pod',
      `${kind} "${name}" in namespace "${namespace}" has no running pod (${why}); see: kubectl get pods -n ${namespace} -l '${selector}'`,
      { detail: { namespace, kind, name, selector, matching: pods.length } },
    );
  }
  return pod;
}

/** After a 404, tell a missing namespace apart from a missing object. If we may not read
 *  namespaces (403), we cannot tell, and the caller's "not found in namespace" stands. */
async function assertNamespaceExists(ctx: ResolveContext, namespace: string): Promise<void> {
  const res = await ctx.api.getJson(`/api/v1/namespaces/${enc(namespace)}`, ctx.headers);
  if (res.status === 404) {
    throw new BridgeError('namespace-not-found', `namespace "${namespace}" not found; list namespaces with: kubectl get ns`, {
      detail: { namespace },
    });
  }
}

/** Every answer but 2xx becomes a BridgeError; 404s were handled by the caller. */
function checkAnswer(ctx: ResolveContext, status: number, body: unknown, what: string, denied: string): void {
  if (status >= 200 && status < 300) return;
  if (status === 401) throw unauthorized(ctx.api, parseStatus(body));
  if (status === 403) throw forbidden(parseStatus(body), denied);
  throw unexpectedResponse(ctx.api, what, status, body);
}

function parseObject<T>(schema: z.ZodType<T>, body: unknown, what: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    throw new BridgeError('internal', `the Kubernetes API server sent an unexpected document for ${what}; see the bridge log`, {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

function checkPodRunning(pod: Pod, namespace: string): void {
  const phase = pod.status.phase ?? 'Unknown';
  if (phase === 'Running') return;
  const name = pod.metadata.name;
  const where = `pod "${name}" in namespace "${namespace}"`;
  let message: string;
  if (phase === 'Succeeded' || phase === 'Failed') {
    message = `${where} has completed (phase ${phase}) and cannot run commands; pick a running pod (kubectl get pods -n ${namespace})`;
  } else if (phase === 'Pending') {
    message = `${where} is Pending, not Running; wait until it starts (kubectl get pod ${name} -n ${namespace})`;
  } else {
    message = `${where} is ${phase}, not Running; see: kubectl describe pod ${name} -n ${namespace}`;
  }
  throw new BridgeError('pod-not-running', message, { detail: { namespace, pod: name, phase } });
}

interface ContainerNames {
  regular: string[];
  init: string[];
  ephemeral: string[];
}

function containerNames(pod: Pod): ContainerNames {
  return {
    regular: pod.spec.containers.map((c) => c.name),
    init: (pod.spec.initContainers ?? []).map((c) => c.name),
    ephemeral: (pod.spec.ephemeralContainers ?? []).map((c) => c.name),
  };
}

/** The requested container, else the kubectl default-container annotation, else the first.
 *  Init (sidecar) and ephemeral (kubectl debug) containers may be named explicitly, as with kubectl. */
function chooseContainer(pod: Pod, namespace: string, requested: string | null): string {
  const names = containerNames(pod);
  const podName = pod.metadata.name;
  if (requested !== null) {
    if ([...names.regular, ...names.init, ...names.ephemeral].includes(requested)) return requested;
    const lists = [`its containers: ${names.regular.join(', ') || '(none)'}`];
    if (names.init.length > 0) lists.push(`init containers: ${names.init.join(', ')}`);
    if (names.ephemeral.length > 0) lists.push(`ephemeral containers: ${names.ephemeral.join(', ')}`);
    throw new BridgeError(
      'container-not-found',
      `container "${requested}" not found in pod "${podName}" in namespace "${namespace}"; ${lists.join('; ')}`,
      { detail: { namespace, pod: podName, container: requested, ...names } },
    );
  }
  const annotated = pod.metadata.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  // kubectl ignores (with a warning) an annotation naming a container that does not exist.
  if (annotated !== undefined && names.regular.includes(annotated)) return annotated;
  const first = names.regular[0];
  if (first === undefined) {
    throw new BridgeError('container-not-found', `pod "${podName}" in namespace "${namespace}" has no containers`);
  }
  return first;
}

export function findStatus(pod: Pod, container: string): ContainerStatus | undefined {
  const all = [
    ...(pod.status.containerStatuses ?? []),
    ...(pod.status.initContainerStatuses ?? []),
    ...(pod.status.ephemeralContainerStatuses ?? []),
  ];
  return all.find((s) => s.name === container);
}

function checkContainerRunning(pod: Pod, namespace: string, container: string): void {
  const status = findStatus(pod, container);
  const podName = pod.metadata.name;
  const where = `container "${container}" in pod "${podName}" in namespace "${namespace}"`;
  const hint = `see: kubectl describe pod ${podName} -n ${namespace}`;
  const detail = { namespace, pod: podName, container };
  if (status?.state?.running !== undefined) return;
  const waiting = status?.state?.waiting;
  const terminated = status?.state?.terminated;
  let state: string;
  if (waiting !== undefined) {
    state = `waiting: ${waiting.reason ?? 'no reason given'}`;
  } else if (terminated !== undefined) {
    const code = terminated.exitCode !== undefined ? `, exit code ${terminated.exitCode}` : '';
    state = `terminated: ${terminated.reason ?? 'no reason given'}${code}`;
  } else {
    throw new BridgeError('container-not-running', `${where} has not started yet; ${hint}`, { detail });
  }
  throw new BridgeError('container-not-running', `${where} is not running (${state}); ${hint}`, {
    detail: { ...detail, state: status?.state },
  });
}

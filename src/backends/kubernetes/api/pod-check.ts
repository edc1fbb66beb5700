/**
 * Why did a session end that we did not end? When the pod is deleted or the container restarts,
 * the runtime SIGKILLs every process in it: the exec reports exit 137 (or the stream breaks), which
 * alone would tell the user nothing. Reading the pod once more and comparing it with what it was at
 * the start names the cause in one line.
 */
import { BridgeError } from '../../../errors.ts';
import type { KubeApiClient, RequestHeaders } from './client.ts';
import { PodSchema, type Pod } from './objects.ts';
import { findStatus, type ExecTarget } from './target-resolution.ts';

/** What identifies the pod and the container incarnation a session started in. */
export interface PodSnapshot {
  uid: string | null;
  containerID: string | null;
  restartCount: number | null;
}

export function snapshotOf(pod: Pod, container: string): PodSnapshot {
  const status = findStatus(pod, container);
  return {
    uid: pod.metadata.uid ?? null,
    containerID: status?.containerID ?? null,
    restartCount: status?.restartCount ?? null,
  };
}

/** Compares the pod now with the snapshot; null when nothing about it explains the end. */
export function compareWithSnapshot(target: ExecTarget, before: PodSnapshot, now: Pod | 'deleted'): BridgeError | null {
  const detail = { ...target, before };
  const podWhere = `pod "${target.pod}" in namespace "${target.namespace}"`;
  if (now === 'deleted' || (before.uid !== null && now.metadata.uid !== undefined && now.metadata.uid !== before.uid) || now.metadata.deletionTimestamp) {
    return new BridgeError('pod-not-found', `${podWhere} was deleted; the session ended with it`, { detail });
  }
  const where = `container "${target.container}" in ${podWhere}`;
  const status = findStatus(now, target.container);
  const restarted =
    (before.restartCount !== null && status?.restartCount !== undefined && status.restartCount > before.restartCount) ||
    (before.containerID !== null && status?.containerID !== undefined && status.containerID !== before.containerID);
  if (restarted) {
    return new BridgeError('container-not-running', `${where} restarted; the session ended with it`, { detail: { ...detail, now: status } });
  }
  const state = status?.state;
  if (state !== undefined && state.running === undefined) {
    let words = 'stopped';
    if (state.terminated !== undefined) {
      const code = state.terminated.exitCode !== undefined ? `, exit code ${state.terminated.exitCode}` : '';
      words = `stopped (terminated: ${state.terminated.reason ?? 'no reason given'}${code})`;
    } else if (state.waiting !== undefined) {
      words = `stopped (waiting: ${state.waiting.reason ?? 'no reason given'})`;
    }
    return new BridgeError('container-not-running', `${where} ${words}; the session ended with it`, { detail: { ...detail, now: status } });
  }
  return null;
}

/** Reads the pod; null when it could not be read (the API server may be what failed). */
export async function readPodNow(api: KubeApiClient, headers: RequestHeaders, target: ExecTarget): Promise<Pod | 'deleted' | null> {
  const path = `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}`;
  try {
    const res = await api.getJson(path, headers);
    if (res.status === 404) return 'deleted';
    if (res.status < 200 || res.status >= 300) return null;
    const parsed = PodSchema.safeParse(res.body);
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

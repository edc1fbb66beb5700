/**
 * Which pod of a workload we exec into, the way `kubectl exec deploy/NAME` chooses it:
 * list the pods matching the workload's selector and take the first of
 * `sort.Reverse(podutils.ActivePods)` (kubectl/pkg/polymorphichelpers/attachablepodforobject.go,
 * kubectl/pkg/util/podutils/podutils.go). kubectl would then try a pod that is not Running and
 * fail; we keep only Running pods first, so the user gets a precise "no running pod" instead.
 */
import { BridgeError } from '../../../errors.ts';
import type { LabelSelector, Pod } from './objects.ts';

/** The `labelSelector` query value for a LabelSelector (metav1.LabelSelectorAsSelector).
 *  null when the selector is empty: it would match every pod in the namespace. */
export function labelSelectorQuery(selector: LabelSelector | null | undefined): string | null {
  if (selector === null || selector === undefined) return null;
  const parts: string[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) parts.push(`${key}=${value}`);
  for (const req of selector.matchExpressions ?? []) {
    const values = [...(req.values ?? [])].sort().join(',');
    switch (req.operator) {
      case 'In':
        parts.push(`${req.key} in (${values})`);
        break;
      case 'NotIn':
        parts.push(`${req.key} notin (${values})`);
        break;
      case 'Exists':
        parts.push(req.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${req.key}`);
        break;
      default:
        throw new BridgeError('unsupported', `unknown label selector operator "${req.operator}" for key "${req.key}"`);
    }
  }
  return parts.length === 0 ? null : parts.join(',');
}

function isReady(pod: Pod): boolean {
  return (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Milliseconds since the epoch; 0 for a missing time (Go's zero time). */
function time(value: string | null | undefined): number {
  if (value === null || value === undefined || value === '') return 0;
  const t = Date.parse(value);
  return Number.isNaN(t) ? 0 : t;
}

function readyTime(pod: Pod): number {
  const c = (pod.status.conditions ?? []).find((c) => c.type === 'Ready' && c.status === 'True');
  return time(c?.lastTransitionTime);
}

function maxRestarts(pod: Pod): number {
  return Math.max(0, ...(pod.status.containerStatuses ?? []).map((s) => s.restartCount ?? 0));
}

/** podutils.afterOrZero: t1 after t2, where a zero time counts as after any real time. */
function afterOrZero(t1: number, t2: number): boolean {
  if (t1 === 0 || t2 === 0) return t1 === 0;
  return t1 > t2;
}

const PHASE_RANK: Readonly<Record<string, number>> = { Pending: 0, Unknown: 1, Running: 2 };

/** podutils.ActivePods.Less: true when `a` is "less active" than `b`. */
export function lessActive(a: Pod, b: Pod): boolean {
  const nodeA = a.spec.nodeName ?? '';
  const nodeB = b.spec.nodeName ?? '';
  // 1. Unassigned < assigned
  if (nodeA !== nodeB && (nodeA === '' || nodeB === '')) return nodeA === '';
  // 2. Pending < Unknown < Running
  const rankA = PHASE_RANK[a.status.phase ?? ''] ?? 0;
  const rankB = PHASE_RANK[b.status.phase ?? ''] ?? 0;
  if (rankA !== rankB) return rankA < rankB;
  // 3. Not ready < ready
  if (isReady(a) !== isReady(b)) return !isReady(a);
  // 4. Ready for less time < more time
  if (isReady(a) && isReady(b) && readyTime(a) !== readyTime(b)) return afterOrZero(readyTime(a), readyTime(b));
  // 5. More restarts < fewer restarts
  if (maxRestarts(a) !== maxRestarts(b)) return maxRestarts(a) > maxRestarts(b);
  // 6. Newer < older (empty creation time is the newest)
  const createdA = time(a.metadata.creationTimestamp);
  const createdB = time(b.metadata.creationTimestamp);
  if (createdA !== createdB) return afterOrZero(createdA, createdB);
  return false;
}

/** Pods ordered most active first (sort.Reverse(ActivePods)). Stable for equal pods. */
export function sortMostActiveFirst(pods: readonly Pod[]): Pod[] {
  return [...pods].sort((a, b) => (lessActive(b, a) ? -1 : lessActive(a, b) ? 1 : 0));
}

/** The pod to exec into, or null when none is Running. Pods already being deleted come last:
 *  they still run, but the session would die with them in a moment. */
export function pickPod(pods: readonly Pod[]): Pod | null {
  const running = sortMostActiveFirst(pods.filter((p) => p.status.phase === 'Running'));
  return running.find((p) => !p.metadata.deletionTimestamp) ?? running[0] ?? null;
}

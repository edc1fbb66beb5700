/**
 * The target picker's view of a cluster (src/web/): the running containers of running pods in
 * the namespaces asked for, read with the identity's impersonation headers, so RBAC hides what
 * the person may not see. A namespace the identity may not list is skipped, not an error: the
 * picker shows what can be shown.
 */
import type { ListedPlace, ListScope } from '../../backend.ts';
import type { KubeApiClient, RequestHeaders } from './client.ts';
import { PodListSchema } from './objects.ts';

/** Namespaces read per picker request: each is one GET. */
const MAX_NAMESPACES = 50;

export async function listPlaces(api: KubeApiClient, headers: RequestHeaders, scope: ListScope, defaultNamespace: string): Promise<ListedPlace[]> {
  let namespaces = scope.namespaces;
  if (namespaces === null) {
    const res = await api.getJson('/api/v1/namespaces', headers);
    const items = res.status === 200 ? (res.body as { items?: Array<{ metadata?: { name?: unknown } }> } | null)?.items : undefined;
    namespaces = Array.isArray(items) ? items.map((n) => n.metadata?.name).filter((n): n is string => typeof n === 'string') : [defaultNamespace];
  }
  const places: ListedPlace[] = [];
  for (const namespace of [...new Set(namespaces)].sort().slice(0, MAX_NAMESPACES)) {
    if (places.length >= scope.limit) break;
    const res = await api.getJson(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, headers);
    if (res.status !== 200) continue;
    const parsed = PodListSchema.safeParse(res.body);
    if (!parsed.success) continue;
    for (const pod of parsed.data.items ?? []) {
      if (pod.status.phase !== 'Running' || pod.metadata.deletionTimestamp) continue;
      const running = new Set((pod.status.containerStatuses ?? []).filter((c) => c.state?.running).map((c) => c.name));
      for (const c of pod.spec.containers) {
        if (!running.has(c.name)) continue;
        places.push({ target: `${namespace}.${pod.metadata.name}+${c.name}`, namespace, pod: pod.metadata.name, container: c.name });
      }
    }
  }
  return places.slice(0, scope.limit);
}

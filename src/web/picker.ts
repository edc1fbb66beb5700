/**
 * The target picker's list: what the backend shows this identity (the API server with its
 * impersonation headers, the Docker Engine, this machine), kept only where the policy would let it
 * open a terminal. Namespaces come from the rules that apply to the identity: literal names are
 * listed directly; a pattern means "every namespace the identity may list".
 */
import type { Backend, ListedPlace } from '../backends/backend.ts';
import type { Identity, Policy } from '../policy/index.ts';
import { authorize } from '../policy/index.ts';
import { ruleAppliesTo } from '../policy/authorize.ts';
import { parseTarget } from '../target.ts';

/** Places one answer carries at most; the page has a search box for the rest. */
export const PICKER_LIMIT = 500;

export interface PickerAnswer {
  identity: string;
  places: Array<Pick<ListedPlace, 'target' | 'namespace' | 'pod' | 'container'>>;
  truncated: boolean;
}

export function namespacesToList(policy: Policy, identity: Identity): string[] | null {
  const who = policy.identities.get(identity.name);
  if (who === undefined) return [];
  const names = new Set<string>();
  for (const rule of policy.rules) {
    if (!ruleAppliesTo(rule, who)) continue;
    for (const glob of rule.namespaces) {
      if (!glob.literal) return null;
      names.add(glob.source);
    }
  }
  return [...names];
}

export async function pickerList(backend: Backend, policy: Policy, identity: Identity): Promise<PickerAnswer> {
  if (backend.list === undefined) return { identity: identity.name, places: [], truncated: false };
  const namespaces = namespacesToList(policy, identity);
  const found = namespaces !== null && namespaces.length === 0 ? [] : await backend.list(identity, { namespaces, limit: PICKER_LIMIT + 1 });
  const places = found.filter((place) => allowed(backend, policy, identity, place)).map(({ target, namespace, pod, container }) => ({ target, namespace, pod, container }));
  return { identity: identity.name, places: places.slice(0, PICKER_LIMIT), truncated: found.length > PICKER_LIMIT };
}

function allowed(backend: Backend, policy: Policy, identity: Identity, place: ListedPlace): boolean {
  let target;
  try {
    target = parseTarget(place.target, { defaultEngine: backend.defaultEngine ?? 'kubernetes' });
  } catch {
    return false;
  }
  const decision = authorize(policy, identity, {
    target: { ...target, namespace: target.namespace ?? place.namespace ?? backend.defaultNamespace },
    action: 'shell',
    tty: true,
    container: place.container,
    podName: place.pod,
    ...(place.docker ? { docker: place.docker } : {}),
  });
  return decision.allowed;
}

/**
 * The login-name grammar: a pure function from the SSH user name to a Target or a precise error.
 * See docs/targets.md for the user-facing contract.
 */
import { BridgeError } from './errors.ts';

export type WorkloadKind = 'deployment' | 'statefulset' | 'daemonset' | 'replicaset' | 'job';

export type TargetRef = { kind: 'pod'; name: string } | { kind: WorkloadKind; name: string };

export interface Target {
  /** The login name exactly as the client sent it, for logs and messages. */
  raw: string;
  /** null: the configured default namespace. */
  namespace: string | null;
  ref: TargetRef;
  /** null: the pod's default container. */
  container: string | null;
}

export function parseTarget(raw: string): Target {
  // Placeholder until the grammar lands: a bare pod name in the default namespace.
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(raw)) {
    throw new BridgeError('invalid-target', `invalid login name "${raw}"`);
  }
  return { raw, namespace: null, ref: { kind: 'pod', name: raw }, container: null };
}

/** Human form for messages: `deployment/web in namespace team-a`. */
export function describeRef(ref: TargetRef): string {
  return ref.kind === 'pod' ? `pod "${ref.name}"` : `${ref.kind} "${ref.name}"`;
}

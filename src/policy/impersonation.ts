/**
 * The identity's Kubernetes side as HTTP headers: the bridge asks the API server to act as the
 * human (Impersonate-User / Impersonate-Group), so Kubernetes RBAC and the audit log see who
 * did it, and a bridge that may exec anywhere is not a cluster-admin in disguise. For the
 * KubernetesBackendOptions.requestHeaders hook.
 */
import type { Identity } from './identities.ts';

export type ImpersonationHeaders = Readonly<Record<string, string | readonly string[]>>;

const NONE: ImpersonationHeaders = Object.freeze({});

/** No headers for an identity that acts as the bridge itself (authorized_keys mode). */
export function impersonationHeaders(identity: Identity): ImpersonationHeaders {
  const k = identity.kubernetes;
  if (k === null) return NONE;
  // Without Impersonate-Group the API server gives the user just system:authenticated.
  const headers: Record<string, string | readonly string[]> = { 'Impersonate-User': k.user };
  if (k.groups.length > 0) headers['Impersonate-Group'] = [...k.groups];
  return Object.freeze(headers);
}

/**
 * The access policy: who may log in (keys, certificate principals), as whom towards Kubernetes,
 * and where and what they may do. docs/policy.md is the operator's guide; this is the surface
 * the SSH server uses. Everything but PolicySource is pure.
 */
export type { Action, CertificateAuthority, Policy, PolicyIdentity, PolicyKey, PolicyKind, Rule } from './types.ts';
export type { Identity, IdentitySource, KubernetesUser, Permits } from './identities.ts';
export { identityLogFields } from './identities.ts';
export type { KeyOptions } from './key-options.ts';
export { PolicyError, formatIssue, type PolicyIssue } from './policy-errors.ts';
export { parsePolicy } from './load.ts';
export { fromAuthorizedKeys } from './authorized-keys.ts';
export {
  resolveKey,
  resolvePrincipals,
  findCertificateAuthority,
  type KeyResolution,
  type PrincipalResolution,
  type CertificateLogin,
} from './identity-lookup.ts';
export { authorize, type AccessRequest, type Decision, type DenialReason, type ResolvedTarget } from './authorize.ts';
export { planSession, type SessionPlan, type SshRequest } from './session-request.ts';
export { addressAllowed, parseAddressPatterns } from './address.ts';
export { impersonationHeaders, type ImpersonationHeaders } from './impersonation.ts';
export { PolicySource, type PolicySourceOptions, type ReloadResult } from './source.ts';

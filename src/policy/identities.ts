/**
 * Who is behind an SSH connection once authentication succeeded, and what the credential that
 * proved it allows. A session keeps this object for its whole life: a policy reload changes
 * what NEW sessions may do (authorize() reads the current policy), never the running ones.
 *
 * Layers outside the policy (ssh/, backends/) import the type through src/identity.ts.
 */
import type { PermitOpen } from './permit-open.ts';

/** Who the bridge impersonates for this identity (Impersonate-User / Impersonate-Group). */
export interface KubernetesUser {
  readonly user: string;
  readonly groups: readonly string[];
}

/** What the credential itself permits, whatever the rules say (authorized_keys options,
 *  certificate extensions). authorize() requires both. */
export interface Permits {
  readonly pty: boolean;
  readonly portForwarding: boolean;
  /** authorized_keys `permitopen=` destinations; absent or null: any destination. */
  readonly permitOpen?: readonly PermitOpen[] | null;
}

export type IdentitySource =
  | {
      readonly kind: 'key';
      /** Where the key was listed, for the log: `policy.yaml:14` or `authorized_keys:3`. */
      readonly listedAt: string;
    }
  | {
      readonly kind: 'certificate';
      readonly keyId: string;
      /** Decimal: serials are uint64 and must not pass through a JS number. */
      readonly serial: string;
      readonly principals: readonly string[];
      /** The principal that selected the identity. */
      readonly principal: string;
      readonly caFingerprint: string;
    }
  | {
      /** A browser behind an authenticating proxy (src/web/auth/proxy-login.ts). */
      readonly kind: 'web-proxy';
      /** The proxy's address and the user it named. */
      readonly proxy: string;
      readonly user: string;
    };

export interface Identity {
  /** The policy identity's name (authorized_keys mode: the key comment, else its fingerprint). */
  readonly name: string;
  /** SHA256 fingerprint of the key that authenticated (for a certificate: the certified key). */
  readonly keyFingerprint: string;
  /** Comment of the authorized_keys line, if any; null in policy mode and for certificates. */
  readonly keyComment: string | null;
  /** null: act with the bridge's own Kubernetes credentials (authorized_keys mode only). */
  readonly kubernetes: KubernetesUser | null;
  /** Policy groups the identity belonged to when it logged in (for logs; authorize() reads
   *  group membership from the current policy). */
  readonly groups: readonly string[];
  readonly source: IdentitySource;
  /** Runs instead of whatever the client asks for (`command=`, certificate force-command). */
  readonly forcedCommand: string | null;
  readonly permits: Permits;
}

/** The fields worth a log line, without arrays that may be long. */
export function identityLogFields(identity: Identity): Record<string, unknown> {
  return {
    identity: identity.name,
    fingerprint: identity.keyFingerprint,
    via:
      identity.source.kind === 'key'
        ? `key ${identity.source.listedAt}`
        : identity.source.kind === 'web-proxy'
          ? `web proxy ${identity.source.proxy} user ${JSON.stringify(identity.source.user)}`
          : `certificate ${JSON.stringify(identity.source.keyId)} serial ${identity.source.serial}`,
    k8sUser: identity.kubernetes?.user ?? null,
  };
}

export function freezeIdentity(identity: Identity): Identity {
  return Object.freeze({
    ...identity,
    kubernetes: identity.kubernetes === null ? null : Object.freeze({ ...identity.kubernetes, groups: Object.freeze([...identity.kubernetes.groups]) }),
    groups: Object.freeze([...identity.groups]),
    source: Object.freeze(identity.source.kind === 'certificate' ? { ...identity.source, principals: Object.freeze([...identity.source.principals]) } : { ...identity.source }),
    permits: Object.freeze({ ...identity.permits }),
  });
}

/**
 * A loaded, validated policy: what the resolvers and authorize() read. Built only by
 * parsePolicy() (the YAML file) or fromAuthorizedKeys() (a plain authorized_keys file), so the
 * server has one code path whichever file the operator gave. Immutable once built: a reload
 * builds a new one and swaps it in whole.
 */
import type { ParsedKey } from 'ssh2';
import type { WorkloadKind } from '../target.ts';
import type { Glob } from './glob.ts';
import type { KubernetesUser } from './identity.ts';
import type { KeyOptions } from './key-options.ts';

export type PolicyKind = 'policy-file' | 'authorized-keys';

export interface PolicyIdentity {
  readonly name: string;
  /** null only in authorized_keys mode: the bridge acts with its own credentials. */
  readonly kubernetes: KubernetesUser | null;
  readonly groups: readonly string[];
  readonly principals: readonly string[];
}

export interface PolicyKey {
  readonly identity: string;
  /** Verifies the client's signature (ssh2's ParsedKey.verify). */
  readonly publicKey: ParsedKey;
  readonly fingerprint: string;
  readonly comment: string | null;
  readonly options: KeyOptions;
  /** `policy.yaml:14` (the line of the key entry), for logs. */
  readonly listedAt: string;
}

export interface WorkloadPattern {
  /** null: any workload kind (the pattern's kind was written `*`). */
  readonly kind: WorkloadKind | null;
  readonly name: Glob;
  /** As written, for messages. */
  readonly source: string;
}

export interface Capabilities {
  readonly tty: boolean;
  readonly commands: boolean;
  readonly shell: boolean;
  readonly fileTransfer: boolean;
  readonly portForwarding: boolean;
  /** Watch other users' browser terminals in the places the rule reaches, read-only. */
  readonly observe: boolean;
}

/** Pod ports a rule lets be forwarded, inclusive. */
export interface PortRange {
  readonly low: number;
  readonly high: number;
}

export interface Rule extends Capabilities {
  /** 1-based position in the file: `#3` in messages. */
  readonly number: number;
  readonly name: string | null;
  /** Applies to every identity (only the synthetic rule of authorized_keys mode). */
  readonly everyone: boolean;
  readonly identities: ReadonlySet<string>;
  readonly groups: ReadonlySet<string>;
  readonly namespaces: readonly Glob[];
  /** null: the rule does not speak of pods (only of workloads). */
  readonly pods: readonly Glob[] | null;
  /** null: the rule does not speak of workloads (only of pods). */
  readonly workloads: readonly WorkloadPattern[] | null;
  /** null: any container. */
  readonly containers: readonly Glob[] | null;
  /** With portForwarding: the pod ports it allows; absent or null: any port. */
  readonly ports?: readonly PortRange[] | null;
  /** Docker containers the rule reaches (absent or null: none, unless `everyone`). */
  readonly docker?: DockerRule | null;
}

/** Docker containers a rule reaches: every selector given must match (null: any). */
export interface DockerRule {
  /** Container names. */
  readonly containers: readonly Glob[] | null;
  /** Compose projects (com.docker.compose.project). */
  readonly projects: readonly Glob[] | null;
  /** Compose services (com.docker.compose.service). */
  readonly services: readonly Glob[] | null;
  /** Labels the container must carry, each value matching its glob. */
  readonly labels: ReadonlyArray<{ readonly key: string; readonly value: Glob }>;
}

export interface CertificateAuthority {
  readonly name: string;
  /** The CA public key blob, compared with the certificate's signature key. */
  readonly blob: Buffer;
  readonly fingerprint: string;
  /** Decimal strings (uint64). */
  readonly revokedSerials: ReadonlySet<string>;
  readonly revokedKeyIds: ReadonlySet<string>;
}

export interface Policy {
  readonly kind: PolicyKind;
  /** The file as given to the loader, for messages. */
  readonly file: string;
  /** sha256 of the file's bytes: logged on load, and how a file watcher tells a real change. */
  readonly digest: string;
  readonly identities: ReadonlyMap<string, PolicyIdentity>;
  /** By base64 of the public key blob. Several entries only in authorized_keys mode, where
   *  sshd tries each line holding the key until one's from=/expiry-time= pass. */
  readonly keys: ReadonlyMap<string, readonly PolicyKey[]>;
  /** Certificate principal -> identity name. */
  readonly principals: ReadonlyMap<string, string>;
  readonly certificateAuthorities: readonly CertificateAuthority[];
  readonly rules: readonly Rule[];
  /** Things worth a log line that do not stop the load (unusable authorized_keys lines...). */
  readonly warnings: readonly string[];
}

/** What a session asks to do: `exec` is 'command', the sftp subsystem is 'file-transfer'. */
/** `observe`: watching a live browser terminal in that place, read-only (src/web/terminal/). */
export type Action = 'shell' | 'command' | 'file-transfer' | 'port-forward' | 'observe';

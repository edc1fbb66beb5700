import type { Duplex, Readable, Writable } from 'node:stream';
import type { Logger } from '../log.ts';
import type { BridgeError } from '../errors.ts';
import type { Engine, Target } from '../target.ts';
import type { Identity } from '../identity.ts';

/** The terminal the SSH client asked for with pty-req. cols/rows of 0 mean "unknown". */
export interface TtySpec {
  term: string;
  cols: number;
  rows: number;
}

/** What to run. Backends know nothing of SSH: the session translates SSH requests into this. */
export interface ProcessSpec {
  /** null: an interactive login shell (bash where present, else sh). Otherwise a command string
   *  that runs through `/bin/sh -c` exactly as sshd runs it (never split on spaces). */
  command: string | null;
  /** null: no terminal; stdout and stderr stay separate. */
  tty: TtySpec | null;
  /** Environment the user may set (TERM comes from `tty.term`, not from here). */
  env: Readonly<Record<string, string>>;
}

/** How a remote process ended. `error` covers a stream or API failure after the process started. */
export type Exit =
  | { kind: 'code'; code: number }
  | { kind: 'signal'; signal: string; coreDumped: boolean }
  | { kind: 'error'; error: BridgeError };

export interface TerminalSize {
  cols: number;
  rows: number;
}

/**
 * A process running somewhere (a container, this machine). Contract for every backend:
 * - `stdout`/`stderr` are flow-controlled: when nobody reads them, the backend stops reading from
 *   the process (pauses the socket, the pty), so memory stays bounded.
 * - `stdin` reports backpressure through `write()` returning false; `stdin.end()` delivers EOF.
 * - `exited` resolves once, and only after `stdout` and `stderr` have pushed all their data and
 *   ended, so a consumer that drains them and then awaits `exited` has seen every byte.
 * - `exited` never rejects: failures after start are `{ kind: 'error' }`.
 */
export interface RemoteProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** null when a TTY was requested: the terminal carries both streams. */
  readonly stderr: Readable | null;
  /** False where `stdin.end()` cannot reach the process (Kubernetes exec v4 over WebSocket). */
  readonly canCloseStdin: boolean;
  /** What carries the process, for the log and any message about it, e.g. `v4.channel.k8s.io
   *  over WebSocket (WebSocket v5 and SPDY refused)`; absent where there is nothing to tell. */
  readonly protocol?: string;
  /** Resize the remote terminal; sizes with a 0 are ignored. No-op without a TTY. */
  resize(size: TerminalSize): void;
  /** Deliver a signal by SSH name (INT, TERM, HUP, KILL, ...), without the SIG prefix, to the
   *  process group as sshd's killpg() does. Asynchronous, best effort, never throws. */
  signal(name: string): void;
  readonly exited: Promise<Exit>;
  /** The client went away before the process exited: stop it and release everything. Idempotent. */
  terminate(reason: string): Promise<void>;
}

/** Where a target resolved to; the session checks it against the access policy before anything runs. */
export interface ResolvedPlace {
  namespace: string;
  pod: string;
  container: string;
  /** A Docker container: what policy rules about Docker match on (its name, Compose labels). */
  docker?: DockerFacts;
}

/** What the Docker backend knows about the container it resolved a login to. */
export interface DockerFacts {
  name: string;
  id: string;
  project: string | null;
  service: string | null;
  labels: Readonly<Record<string, string>>;
}

export interface OpenContext {
  identity: Identity;
  log: Logger;
  /** Called once the target is resolved and before the process starts: a BridgeError refuses. */
  authorizeResolved?: (place: ResolvedPlace) => BridgeError | null;
}

/** Who asks for a forward, and the policy check on the place it resolved to. */
export interface ForwardContext {
  identity: Identity;
  log: Logger;
  /** Called once the target is resolved and before anything connects: a BridgeError refuses. */
  authorizeResolved?: (place: ResolvedPlace) => BridgeError | null;
}

/**
 * One TCP connection to a port on the pod's loopback, established: the pod's side accepted it
 * (or, where the protocol cannot say so, did not refuse it in time; see docs/forwarding.md).
 * `stream` is flow-controlled both ways like RemoteProcess's streams; `end()` half-closes where
 * `canHalfClose`, and `destroy()` closes the connection in the pod.
 */
export interface ForwardedConnection {
  readonly stream: Duplex;
  /** Where it went, for the audit record. */
  readonly place: ResolvedPlace;
  /** `SPDY/3.1 in WebSocket`, `127.0.0.1 of this machine`, ...: for the log. */
  readonly protocol: string;
  /** False on Kubernetes' plain WebSocket port-forward (v4): it has no half-close. */
  readonly canHalfClose: boolean;
}

/** One container the target picker (src/web/) may offer, before the policy filters it. */
export interface ListedPlace {
  /** The login name that reaches it (`team-a.web-7d9f+nginx`, `docker~web`). */
  target: string;
  namespace: string;
  pod: string;
  container: string;
  docker?: DockerFacts;
}

/** Where list() looks; the policy decides the namespaces, the API server decides what is seen. */
export interface ListScope {
  /** Namespaces to list pods in; null: every namespace the identity may list (else the default one). */
  namespaces: readonly string[] | null;
  /** At most this many places (the picker's page is bounded). */
  limit: number;
}

export type BackendName = 'kubernetes' | 'local' | 'docker';

export interface Backend {
  readonly name: BackendName;
  /** The namespace of login names that name none. */
  readonly defaultNamespace: string;
  /** Whose grammar login names without an `ENGINE~` prefix follow (target.ts); default kubernetes. */
  readonly defaultEngine?: Engine;
  /** One line for the start-up log: what this backend serves and from where. */
  describe(): string;
  /** Resolves once the process runs; rejects with a BridgeError naming what is wrong. */
  open(target: Target, spec: ProcessSpec, ctx: OpenContext): Promise<RemoteProcess>;
  /** Readiness: resolves if what sessions need (the API server) answers now, else rejects with why. */
  probe?(): Promise<void>;
  /** A TCP connection to `port` on the target pod's loopback (SSH direct-tcpip). Rejects with a
   *  BridgeError naming the pod and port when nothing listens there. Absent: this backend cannot
   *  forward ports, and the forwarding layer says so. */
  forward?(target: Target, port: number, ctx: ForwardContext): Promise<ForwardedConnection>;
  /** The running containers this identity could be sent to, as the API shows them to it
   *  (Kubernetes: with its impersonation headers). The caller filters by the policy. Absent:
   *  the picker offers nothing to pick. */
  list?(identity: Identity, scope: ListScope): Promise<ListedPlace[]>;
  close(): Promise<void>;
}

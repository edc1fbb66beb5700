/**
 * SSH direct-tcpip channels of one connection (ssh -L, -D, -W, ProxyJump) into the login's pod:
 * destination and credential checks, the access policy, then `Backend.forward`, and only once
 * the pod's side holds a connection is the channel accepted. Anything refused becomes
 * SSH_MSG_CHANNEL_OPEN_FAILURE with a readable reason and a log line, never an accepted channel
 * that dies at once. Bytes move through the one pump (src/pipe.ts) with backpressure both ways;
 * half-close passes through where the backend's protocol carries it.
 */
import type { Connection as SshConnection, ServerChannel, TcpipRequestInfo } from 'ssh2';
import type { AuditEvent } from '../audit.ts';
import type { Backend, ForwardedConnection } from '../backends/backend.ts';
import { BridgeError, toBridgeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { flushed, pump } from '../pipe.ts';
import { authorize, type Identity, type PolicySource } from '../policy/index.ts';
import { permitOpenAllows } from '../policy/permit-open.ts';
import { formatTarget, type Target } from '../target.ts';
import { destinationRefusal, meansThePod, printable } from './destination.ts';
import { OpenFailure, refuseChannel, type ChannelReject, type OpenFailureCode } from './open-failure.ts';

/** Forwarded connections open at once on one SSH connection; more are refused (resource shortage)
 *  so one client cannot make the bridge hold unbounded buffers and pod connections. */
export const MAX_FORWARDS_PER_CONNECTION = 64;

export interface ForwardingContext {
  client: SshConnection;
  backend: Backend;
  policy: PolicySource;
  /** The parsed login name, or why it could not be parsed. */
  target: Target | BridgeError;
  /** Who logged in, as the policy resolves the credential NOW (removed keys, revoked
   *  certificates and changed groups apply to the next forward); null: no longer accepted. */
  identity: () => Identity | null;
  /** The login's identity name, for audit records. */
  identityName: string;
  log: Logger;
  audit: { emit(e: AuditEvent): void; conn: string; remote: string };
  /** Set once shutdown began: new forwards are refused. */
  draining: { value: boolean };
}

export class ConnectionForwarding {
  private readonly live = new Set<() => void>();
  /** A workload login (deploy/web) keeps the pod its first forward reached, so every forward of
   *  one connection lands in the same pod, as kubectl port-forward does. */
  private pinned: Target | null = null;
  private pinning: Promise<unknown> | null = null;
  private gone = false;

  constructor(private readonly ctx: ForwardingContext) {}

  get count(): number {
    return this.live.size;
  }

  /** The SSH connection closed: every forwarded connection in the pod is closed with it. */
  closeAll(): void {
    this.gone = true;
    for (const stop of [...this.live]) stop();
  }

  onTcpip(accept: () => ServerChannel | undefined, reject: ChannelReject, info: TcpipRequestInfo): void {
    void this.open(accept, reject, info).catch((err: unknown) => {
      this.ctx.log.error({ err }, 'forward failed unexpectedly');
      this.refuse(reject, OpenFailure.connectFailed, toBridgeError(err).message, info.destPort, null, 'failed');
    });
  }

  private refuse(reject: ChannelReject, code: OpenFailureCode, reason: string, port: number, pod: string | null, result: 'failed' | 'denied'): void {
    const { ctx } = this;
    ctx.log.info({ port, pod, reason }, 'forward refused');
    ctx.audit.emit({
      event: 'forward',
      conn: ctx.audit.conn,
      remote: ctx.audit.remote,
      identity: ctx.identityName,
      target: this.targetName(),
      pod,
      port,
      result,
      reason,
      bytesToPod: 0,
      bytesFromPod: 0,
      durationMs: 0,
    });
    refuseChannel(reject, code, reason);
  }

  private targetName(): string {
    const t = this.ctx.target;
    return t instanceof BridgeError ? '(invalid login name)' : formatTarget(t);
  }

  private async open(accept: () => ServerChannel | undefined, reject: ChannelReject, info: TcpipRequestInfo): Promise<void> {
    const { ctx } = this;
    const { target, backend } = ctx;
    const host = info.destIP;
    const port = info.destPort;
    const prohibited = (reason: string) => this.refuse(reject, OpenFailure.administrativelyProhibited, reason, port, null, 'denied');
    if (ctx.draining.value) return prohibited('podbridge is shutting down; reconnect in a moment');
    const identity = ctx.identity();
    if (identity === null) return prohibited('your credential is no longer accepted by the access policy; log in again');
    if (target instanceof BridgeError) return prohibited(target.message);
    if (!meansThePod(host)) return prohibited(destinationRefusal(host, port));
    if (!permitOpenAllows(identity.permits.permitOpen ?? null, host, port)) {
      const allowed = (identity.permits.permitOpen ?? []).map((p) => `${p.host}:${p.port ?? '*'}`).join(', ');
      return prohibited(`the key's permitopen="${allowed}" does not allow ${printable(host)}:${port}`);
    }
    if (this.live.size >= MAX_FORWARDS_PER_CONNECTION) {
      return this.refuse(reject, OpenFailure.resourceShortage, `too many forwarded connections on this SSH connection (${MAX_FORWARDS_PER_CONNECTION}); close some first`, port, null, 'denied');
    }
    const forward = backend.forward?.bind(backend);
    if (forward === undefined) return prohibited(`the ${backend.name} backend cannot forward ports`);

    const namespace = target.namespace ?? backend.defaultNamespace;
    const base = { target: { ...target, namespace }, action: 'port-forward' as const, tty: false, port };
    const first = authorize(ctx.policy.current(), identity, { ...base, container: target.container });
    if (!first.allowed && !first.pending) return prohibited(first.message);
    let denial: string | null = null;
    const authorizeResolved = (place: { pod: string; container: string }) => {
      const d = authorize(ctx.policy.current(), identity, { ...base, container: place.container, podName: place.pod });
      if (d.allowed) return null;
      denial = d.message;
      return new BridgeError('denied', d.message);
    };

    // Workload logins: the first forward picks the pod, the others wait for it and go there too.
    if (this.pinned === null && target.ref.kind !== 'pod' && this.pinning !== null) await this.pinning.catch(() => undefined);
    const pinFirst = this.pinned === null && target.ref.kind !== 'pod';
    const started = Date.now();
    const attempt = forward(this.pinned ?? target, port, { identity, log: ctx.log, authorizeResolved });
    if (pinFirst) this.pinning = attempt;
    let conn: ForwardedConnection;
    try {
      conn = await attempt;
    } catch (err) {
      const e = toBridgeError(err);
      if (denial !== null || e.code === 'denied') return prohibited(e.message);
      const code = e.code === 'forbidden' || e.code === 'unauthorized' ? OpenFailure.administrativelyProhibited : OpenFailure.connectFailed;
      if (e.code === 'internal') ctx.log.warn({ err: e.cause instanceof Error ? e.cause.message : undefined }, e.message);
      return this.refuse(reject, code, e.message, port, null, 'failed');
    }
    if (pinFirst && this.pinned === null) this.pinned = { ...target, namespace: conn.place.namespace, ref: { kind: 'pod', name: conn.place.pod } };
    const pod = `${conn.place.namespace}/${conn.place.pod}`;
    if (this.gone) {
      conn.stream.destroy();
      return;
    }
    const channel = accept();
    if (!channel) {
      conn.stream.destroy();
      return;
    }
    this.run(channel, conn, { pod, port, started });
  }

  private run(channel: ServerChannel, conn: ForwardedConnection, what: { pod: string; port: number; started: number }): void {
    const { ctx } = this;
    const log = ctx.log.child({ pod: what.pod, port: what.port });
    log.info({ protocol: conn.protocol }, 'forward open');
    const { stream } = conn;
    const abort = new AbortController();
    let toPod = 0;
    let fromPod = 0;
    let upEnded = false;
    let downEnded = false;
    let finished = false;
    const finish = (why: string) => {
      if (finished) return;
      finished = true;
      this.live.delete(stop);
      abort.abort();
      stream.destroy();
      channel.close();
      const durationMs = Date.now() - what.started;
      log.info({ why, bytesToPod: toPod, bytesFromPod: fromPod, ms: durationMs }, 'forward closed');
      ctx.audit.emit({
        event: 'forward',
        conn: ctx.audit.conn,
        remote: ctx.audit.remote,
        identity: ctx.identityName,
        target: this.targetName(),
        pod: what.pod,
        port: what.port,
        result: 'closed',
        reason: why,
        bytesToPod: toPod,
        bytesFromPod: fromPod,
        durationMs,
      });
    };
    const stop = () => finish('the SSH connection closed');
    this.live.add(stop);
    channel.on('error', (err: Error) => log.debug({ err: err.message }, 'forward channel error'));
    stream.on('error', (err: Error) => log.debug({ err: err.message }, 'forward stream error'));
    channel.once('close', () => finish('the client closed the channel'));

    const signal = abort.signal;
    // Client EOF -> half-close towards the pod, where the protocol has one (v4 has none: the
    // connection then stays open until the pod or the client closes it).
    void pump(channel, stream, { end: conn.canHalfClose, signal, onData: (n) => (toPod += n) }).then((r) => {
      if (r !== 'ended') return finish(r === 'error' ? 'the pod connection failed' : 'closed');
      upEnded = true;
      if (downEnded) finish('both sides finished');
    });
    // Pod EOF -> SSH EOF only (not CLOSE): the client may still send, as over TCP.
    void pump(stream, channel, { end: false, signal, onData: (n) => (fromPod += n) }).then(async (r) => {
      if (r !== 'ended') return finish(r === 'error' ? 'the pod connection failed' : 'closed');
      if (!(await flushed(channel, signal))) return finish('closed');
      channel.eof();
      downEnded = true;
      if (upEnded || !conn.canHalfClose) finish('both sides finished');
    });
  }
}

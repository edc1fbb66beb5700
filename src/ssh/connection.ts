/**
 * One SSH connection: authentication (with its limits), then session channels. An error here is
 * logged and ends this connection only.
 */
import { randomUUID } from 'node:crypto';
import type { AuthContext, ClientInfo, Connection as SshConnection } from 'ssh2';
import type { Audit } from '../audit.ts';
import type { Backend } from '../backends/backend.ts';
import type { Config } from '../config.ts';
import type { BridgeError } from '../errors.ts';
import type { Identity } from '../identity.ts';
import type { Logger } from '../log.ts';
import { parseTarget, type Target } from '../target.ts';
import type { PolicySource } from '../policy/index.ts';
import type { Authenticator } from './auth.ts';
import type { KeyedCounter, SourceBackoff } from './limits.ts';
import { Session } from './session.ts';
import { ConnectionForwarding } from '../forwarding/forwarder.ts';
import { OpenFailure, rejectWithReason } from '../forwarding/open-failure.ts';
import { REFUSED, refuseGlobalRequest } from '../forwarding/refusals.ts';

/** What all connections share: limits that span connections, and the live-session registry. */
export interface Shared {
  config: Config;
  backend: Backend;
  authenticator: Authenticator;
  /** The access policy in force, read anew for every session (a reload applies to the next one). */
  policy: PolicySource;
  log: Logger;
  audit: Audit;
  backoff: SourceBackoff;
  identitySessions: KeyedCounter;
  sessions: Set<Session>;
  /** Set once shutdown began: new connections and session channels are refused. */
  draining: { value: boolean };
  /** Ends the login grace period of the TCP connection from `remote` (ip:port). */
  markAuthenticated(remote: string): void;
}

export function handleConnection(client: SshConnection, info: ClientInfo, shared: Shared): void {
  const { config, audit } = shared;
  const conn = randomUUID().slice(0, 8);
  const remote = `${info.ip}:${info.port}`;
  const connectedAt = Date.now();
  let log = shared.log.child({ conn, remote });
  audit.emit({ event: 'connect', conn, remote });

  let identity: Identity | null = null;
  let target: Target | BridgeError | null = null;
  let failures = 0;
  const sessions = new Set<Session>();

  const refuse = (ctx: AuthContext, reason: string, fields: { fingerprint?: string; keyType?: string } = {}, quiet = false) => {
    failures++;
    // Unknown keys are the scanners' daily bread: info. A known key refused (from=, expiry, CA) is a warning.
    log[quiet ? 'info' : 'warn']({ login: ctx.username, method: ctx.method, ...fields, failures }, `auth refused: ${reason}`);
    audit.emit({ event: 'auth', conn, remote, result: 'failure', login: ctx.username, method: ctx.method, reason, ...fields });
    const blockMs = shared.backoff.fail(info.ip);
    if (blockMs > 0) {
      log.warn({ ip: info.ip, seconds: blockMs / 1000 }, 'repeated authentication failures: source address backed off');
      audit.emit({ event: 'limit', conn, remote, limit: 'failure-backoff', detail: `${blockMs} ms` });
    }
    if (failures >= config.ssh.maxAuthTries) {
      log.warn({ failures }, 'too many authentication failures; disconnecting');
      audit.emit({ event: 'limit', conn, remote, limit: 'max-auth-tries', detail: String(failures) });
      ctx.reject();
      client.end();
      return;
    }
    ctx.reject(['publickey']);
  };

  client.on('authentication', (ctx: AuthContext) => {
    if (ctx.method === 'none') return ctx.reject(['publickey']); // the client asking what we offer
    if (ctx.method !== 'publickey') return refuse(ctx, `method ${ctx.method} is not offered`);
    const decision = shared.authenticator.publicKey({
      login: ctx.username,
      remote: info.ip,
      keyAlgo: ctx.key.algo,
      keyBlob: ctx.key.data,
      signature: ctx.signature,
      signedData: ctx.blob,
      hashAlgo: ctx.hashAlgo,
    });
    if (decision.kind === 'acceptable') return ctx.accept();
    if (decision.kind === 'reject') return refuse(ctx, decision.reason, { keyType: ctx.key.algo, fingerprint: decision.fingerprint }, decision.quiet);

    identity = decision.identity;
    try {
      target = parseTarget(ctx.username);
    } catch (err) {
      // Let the user in far enough to read why: a refused login would only say "Permission denied".
      target = err as BridgeError;
    }
    shared.markAuthenticated(remote);
    shared.backoff.succeed(info.ip);
    log = log.child({ identity: identity.name, login: ctx.username });
    log.info({ fingerprint: decision.fingerprint, certKeyId: decision.certKeyId }, 'auth accepted');
    audit.emit({
      event: 'auth',
      conn,
      remote,
      result: 'success',
      login: ctx.username,
      method: ctx.method,
      keyType: ctx.key.algo,
      fingerprint: decision.fingerprint,
      certKeyId: decision.certKeyId,
      certSerial: decision.certSerial,
      identity: identity.name,
    });
    ctx.accept();
  });

  client.on('ready', () => {
    client.on('session', (accept, reject) => {
      const who = identity!;
      if (shared.draining.value) return reject();
      if (sessions.size >= config.ssh.maxSessionsPerConnection) {
        log.warn({ limit: config.ssh.maxSessionsPerConnection }, 'session refused: too many sessions on this connection');
        audit.emit({ event: 'limit', conn, remote, limit: 'max-sessions-per-connection', detail: String(sessions.size) });
        return reject();
      }
      if (!shared.identitySessions.tryAcquire(who.name)) {
        log.warn({ limit: shared.identitySessions.limit }, 'session refused: too many sessions for this identity');
        audit.emit({ event: 'limit', conn, remote, limit: 'max-sessions-per-identity', detail: who.name });
        return reject();
      }
      const ssh = accept();
      const session = new Session(ssh, {
        backend: shared.backend,
        policy: shared.policy,
        target: target!,
        identity: who,
        acceptEnv: config.session.acceptEnv,
        timeouts: config.session,
        motd: config.ssh.motd,
        log,
        audit: { emit: audit.emit, conn, remote },
      });
      sessions.add(session);
      shared.sessions.add(session);
      session.closed.then(() => {
        sessions.delete(session);
        shared.sessions.delete(session);
        shared.identitySessions.release(who.name);
      });
    });
  });

  // direct-tcpip into the login's pod (src/forwarding/); what is not forwarded is refused with a reason.
  let forwarding: ConnectionForwarding | null = null;
  client.on('tcpip', (accept, reject, info) => {
    forwarding ??= new ConnectionForwarding({ client, backend: shared.backend, policy: shared.policy, target: target!, identity: identity!, log, audit: { emit: audit.emit, conn, remote }, draining: shared.draining });
    forwarding.onTcpip(accept, reject, info);
  });
  client.on('openssh.streamlocal', (_accept, reject) => {
    log.info(REFUSED.streamlocal);
    rejectWithReason(client, reject, OpenFailure.administrativelyProhibited, REFUSED.streamlocal);
  });
  client.on('request', (_accept, reject, name) => refuseGlobalRequest(log, name, reject));

  client.on('error', (err: Error) => log.debug({ err: err.message }, 'connection error'));
  client.on('close', () => {
    for (const s of sessions) s.onClientGone('connection closed');
    forwarding?.closeAll();
    audit.emit({ event: 'disconnect', conn, remote, durationMs: Date.now() - connectedAt });
    log.debug('connection closed');
  });
}

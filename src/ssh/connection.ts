/**
 * One SSH connection: authentication (with its limits), then session channels. An error here is
 * logged and ends this connection only.
 */
import { randomUUID } from 'node:crypto';
import type { AuthContext, ClientInfo, Connection as SshConnection } from 'ssh2';
import type { Backend } from '../backends/backend.ts';
import type { Config } from '../config.ts';
import type { Identity } from '../identity.ts';
import type { Logger } from '../log.ts';
import { parseTarget, type Target } from '../target.ts';
import type { PolicySource } from '../policy/index.ts';
import { BridgeError } from '../errors.ts';
import type { Authenticator, Credential } from './auth.ts';
import { sourceKey, type SourceBackoff } from './limits.ts';
import type { Audit } from '../audit.ts';
import { Session } from './session.ts';
import { Deadline, formatDuration } from '../session/duration.ts';
import { eventReporter } from '../session/events.ts';
import type { KeyedCounter } from '../session/limits.ts';
import type { SessionTaps } from '../ops/session-tap.ts';
import { ConnectionForwarding } from '../forwarding/forwarder.ts';
import { OpenFailure, type ChannelReject } from '../forwarding/open-failure.ts';
import { REFUSED, refuseGlobalRequest } from '../forwarding/refusals.ts';
import { setTimeout as delay } from 'node:timers/promises';
import { serveWebLogin, WEB_LOGIN_NAME, type MintLink } from '../web/ssh-web-login.ts';

/** How long a connection the bridge closes waits for its sessions' last lines to reach the client. */
const CLOSE_DELIVERY_MS = 2000;

/** What all connections share: limits that span connections, and the live-session registry. */
export interface Shared {
  /** The slices of the configuration a connection reads. */
  config: Pick<Config, 'ssh' | 'session'>;
  backend: Backend;
  authenticator: Authenticator;
  /** The access policy in force, read anew for every session (a reload applies to the next one). */
  policy: PolicySource;
  log: Logger;
  audit: Audit;
  /** Metrics and recording listeners for each session, if any. */
  taps?: SessionTaps;
  backoff: SourceBackoff;
  identitySessions: KeyedCounter;
  /** Authenticated connections per identity name and per source (sourceKey of the address). */
  identityConnections: KeyedCounter;
  sourceConnections: KeyedCounter;
  sessions: Set<Session>;
  /** Authenticated connections, so a policy change can re-check each one's credential. */
  connections: Set<ConnectionHandle>;
  /** Set once shutdown began: new connections and session channels are refused. */
  draining: { value: boolean };
  /** Mints a one-time browser login link (--web-listen on), for `ssh web-login@bridge`. */
  webLogin?: MintLink;
  /** Ends the login grace period of the TCP connection from `remote` (ip:port). */
  markAuthenticated(remote: string): void;
}

export interface ConnectionHandle {
  /** Resolves the credential again; a connection whose credential no longer resolves is closed. */
  recheck(why: string): void;
}

export function handleConnection(client: SshConnection, info: ClientInfo, shared: Shared): void {
  const { config, audit } = shared;
  const conn = randomUUID().slice(0, 8);
  const remote = `${info.ip}:${info.port}`;
  const source = sourceKey(info.ip);
  const connectedAt = Date.now();
  // Every log line and audit event of this connection carries conn and remote.
  let events = eventReporter(shared.log, audit, conn, remote);
  let log = events.log;
  events.audit({ event: 'connect' });

  let identity: Identity | null = null;
  let credential: Credential | null = null;
  let login = '';
  let target: Target | BridgeError | null = null;
  /** Set when the connection may not be used (a cap, a credential gone): sessions say why, then it closes. */
  let refusal: BridgeError | null = null;
  let closing = false;
  let failures = 0;
  const sessions = new Set<Session>();
  const timers: NodeJS.Timeout[] = [];
  let lifetime: Deadline | null = null;
  const releases: Array<() => void> = [];

  const refuse = (ctx: AuthContext, reason: string, fields: { fingerprint?: string; keyType?: string } = {}, quiet = false) => {
    failures++;
    // Unknown keys are the scanners' daily bread: info. A known key refused (from=, expiry, CA) is a warning.
    log[quiet ? 'info' : 'warn']({ login: ctx.username, method: ctx.method, ...fields, failures }, `auth refused: ${reason}`);
    events.audit({ event: 'auth', result: 'failure', login: ctx.username, method: ctx.method, reason, ...fields });
    const blockMs = shared.backoff.fail(info.ip);
    if (blockMs > 0) {
      log.warn({ ip: info.ip, source, seconds: blockMs / 1000 }, 'repeated authentication failures: source address backed off');
      events.audit({ event: 'limit', limit: 'failure-backoff', detail: `${blockMs} ms` });
    }
    if (failures >= config.ssh.maxAuthTries) {
      log.warn({ failures }, 'too many authentication failures; disconnecting');
      events.audit({ event: 'limit', limit: 'max-auth-tries', detail: String(failures) });
      ctx.reject();
      client.end();
      return;
    }
    ctx.reject(['publickey']);
  };

  /**
   * Ends every session with `reason` on the user's stderr, then the connection. Used when the
   * credential stops resolving after a policy change and when the connection reaches its
   * maximum lifetime.
   */
  const close = (reason: string) => {
    if (closing) return;
    closing = true;
    const ending = [...sessions];
    // Each session's last line (why it ended) must reach the client before the connection goes:
    // wait until the client has it (it closes the channel), bounded, as shutdown does.
    void Promise.all(ending.map((s) => s.end(reason)))
      .then(() => Promise.race([Promise.all(ending.map((s) => s.delivered)), delay(CLOSE_DELIVERY_MS)]))
      .finally(() => client.end());
  };

  /** Takes this connection's place in the per-identity and per-source counts, or says which is full. */
  const admit = (who: Identity): BridgeError | null => {
    const caps: Array<[KeyedCounter, string, string]> = [
      [shared.identityConnections, who.name, `identity "${who.name}" has ${shared.identityConnections.limit} connections open (the limit); close one (or share one with ControlMaster) and retry`],
      [shared.sourceConnections, source, `${source} has ${shared.sourceConnections.limit} connections open (the limit); close one and retry`],
    ];
    for (const [counter, key, message] of caps) {
      if (!counter.tryAcquire(key)) {
        const limit = counter === shared.identityConnections ? 'max-connections-per-identity' : 'max-connections-per-source';
        log.warn({ limit: counter.limit, key }, `connection refused: ${limit}`);
        events.audit({ event: 'limit', limit, detail: key });
        return new BridgeError('limit', message);
      }
      releases.push(() => counter.release(key));
    }
    return null;
  };

  const handle: ConnectionHandle = {
    recheck: (why: string) => {
      if (!credential || closing) return;
      const r = shared.authenticator.recheck(credential);
      if (r.ok) return;
      log.warn({ reason: r.reason, why }, 'credential no longer accepted; closing the connection');
      events.audit({ event: 'limit', limit: 'credential-revoked', detail: r.reason });
      close('your credential is no longer accepted by the access policy; log in again');
    },
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
    credential = decision.credential;
    login = ctx.username;
    try {
      target = parseTarget(ctx.username, { defaultEngine: shared.backend.defaultEngine });
    } catch (err) {
      // Let the user in far enough to read why: a refused login would only say "Permission denied".
      target = err as BridgeError;
    }
    shared.markAuthenticated(remote);
    events = events.child({ identity: identity.name, login: ctx.username });
    log = events.log;
    log.info({ fingerprint: decision.fingerprint, certKeyId: decision.certKeyId }, 'auth accepted');
    events.audit({
      event: 'auth',
      result: 'success',
      login: ctx.username,
      method: ctx.method,
      keyType: ctx.key.algo,
      fingerprint: decision.fingerprint,
      certKeyId: decision.certKeyId,
      certSerial: decision.certSerial,
      identity: identity.name,
    });
    // Over a connection cap the login still succeeds, so that the first session can tell the
    // user why (a refused login would only read "Permission denied"); then the connection ends.
    refusal = admit(identity);
    if (refusal === null) shared.connections.add(handle);
    ctx.accept();
  });

  client.on('ready', () => {
    if (refusal !== null) {
      // Long enough for the client to open its session and read the reason; no longer.
      timers.push(setTimeout(() => client.end(), 5000));
    } else {
      startLifetime();
    }
    client.on('session', (accept, reject) => {
      if (shared.draining.value || closing) return reject();
      if (sessions.size >= config.ssh.maxSessionsPerConnection) {
        log.warn({ limit: config.ssh.maxSessionsPerConnection }, 'session refused: too many sessions on this connection');
        events.audit({ event: 'limit', limit: 'max-sessions-per-connection', detail: String(sessions.size) });
        return reject();
      }
      // The credential as the policy sees it NOW: a removed key, a revoked certificate or
      // changed groups apply to the next session of a connection that is already open.
      let who = identity!;
      let why: BridgeError | null = refusal;
      if (why === null && credential) {
        const r = shared.authenticator.recheck(credential);
        if (r.ok) who = r.identity;
        else {
          log.warn({ reason: r.reason }, 'session refused: credential no longer accepted');
          events.audit({ event: 'denied', identity: who.name, target: login, reason: r.reason });
          // The reason stays in the log, as for a refused login: it may name policy files.
          why = new BridgeError('denied', `your credential is no longer accepted by the access policy; log in again`, { detail: { reason: r.reason } });
        }
      }
      if (why === null && !shared.identitySessions.tryAcquire(who.name)) {
        log.warn({ limit: shared.identitySessions.limit }, 'session refused: too many sessions for this identity');
        events.audit({ event: 'limit', limit: 'max-sessions-per-identity', detail: who.name });
        return reject();
      }
      if (why === null && login === WEB_LOGIN_NAME && shared.webLogin) {
        // Not a session: a one-time link into the browser terminal (src/web/ssh-web-login.ts).
        shared.identitySessions.release(who.name);
        log.info('web-login: one-time browser link printed');
        return serveWebLogin(accept(), who, shared.webLogin, shared.backend.defaultEngine);
      }
      const counted = why === null;
      const ssh = accept();
      const session = new Session(ssh, {
        backend: shared.backend,
        policy: shared.policy,
        target: why ?? target!,
        identity: who,
        acceptEnv: config.session.acceptEnv,
        timeouts: config.session,
        motd: config.ssh.motd,
        events,
        taps: shared.taps,
      });
      sessions.add(session);
      shared.sessions.add(session);
      session.closed.then(() => {
        sessions.delete(session);
        shared.sessions.delete(session);
        if (counted) shared.identitySessions.release(who.name);
      });
    });
  });

  /** The maximum connection lifetime, with the same advance warning sessions get. */
  const startLifetime = () => {
    const { maxConnectionMs } = config.ssh;
    const { warningMs } = config.session;
    if (maxConnectionMs <= 0) return;
    const limit = formatDuration(maxConnectionMs);
    lifetime = new Deadline(
      maxConnectionMs,
      warningMs,
      () => {
        for (const s of sessions) s.notify(`this connection reaches its maximum lifetime (${limit}) in ${formatDuration(warningMs)}`);
      },
      () => {
        log.info({ limit }, 'maximum connection time reached; closing');
        events.audit({ event: 'limit', limit: 'max-connection-time', detail: `${maxConnectionMs} ms` });
        close(`maximum connection time (${limit}) reached`);
      },
    );
  };

  // direct-tcpip into the login's pod (src/forwarding/); what is not forwarded is refused with a reason.
  let forwarding: ConnectionForwarding | null = null;
  client.on('tcpip', (accept, reject, info) => {
    forwarding ??= new ConnectionForwarding({ client, backend: shared.backend, policy: shared.policy, target: target!, identity: () => {
        if (!credential) return identity;
        const r = shared.authenticator.recheck(credential);
        return r.ok ? r.identity : null;
      }, identityName: identity!.name, log, audit: { emit: audit.emit, conn, remote }, draining: shared.draining });
    forwarding.onTcpip(accept, reject, info);
  });
  client.on('openssh.streamlocal', (_accept, reject: ChannelReject) => {
    log.info(REFUSED.streamlocal);
    reject(OpenFailure.administrativelyProhibited, REFUSED.streamlocal); // a constant line of printable ASCII
  });
  client.on('request', (_accept, reject, name) => refuseGlobalRequest(log, name, reject));

  client.on('error', (err: Error) => log.debug({ err: err.message }, 'connection error'));
  client.on('close', () => {
    lifetime?.clear();
    for (const t of timers) clearTimeout(t);
    for (const release of releases.splice(0)) release();
    shared.connections.delete(handle);
    for (const s of sessions) s.onClientGone('connection closed');
    forwarding?.closeAll();
    events.audit({ event: 'disconnect', durationMs: Date.now() - connectedAt });
    log.debug('connection closed');
  });
}

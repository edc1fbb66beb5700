/**
 * The SSH listener: host keys, algorithms, keepalives, the bridge-wide limits, and graceful
 * shutdown. Each connection is handled in connection.ts and isolated from the others.
 */
import net, { type AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import type { ClientInfo, Connection } from 'ssh2';
import type { Audit } from '../audit.ts';
import type { Backend } from '../backends/backend.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { SERVER_SIG_ALGS, toSsh2Algorithms } from './algorithms.ts';
import type { PolicySource } from '../policy/index.ts';
import type { Authenticator } from './auth.ts';
import { handleConnection, type ConnectionHandle, type Shared } from './connection.ts';
import type { HostKey } from './keys.ts';
import { ConnectionRateLimiter } from './connection-rate.ts';
import { SourceBackoff } from './limits.ts';
import { identityLimits, KeyedCounter, type IdentityLimits } from '../session/limits.ts';
import { adoptProxiedAddress, readProxyHeader } from './proxy-protocol.ts';
import { addressAllowed, parseAddressPatterns } from '../policy/address.ts';
import type { Session } from './session.ts';
import type { Metrics } from '../ops/metrics.ts';
import type { SessionTaps } from '../ops/session-tap.ts';
import type { MintLink } from '../web/ssh-web-login.ts';

export interface BridgeServer {
  readonly address: AddressInfo;
  /** Number of open SSH connections. */
  connections(): number;
  /** Number of live sessions. */
  sessions(): number;
  /** True once shutdown began (not ready: accepting nothing new). */
  draining(): boolean;
  /** Stop accepting, warn every session, let them run up to `graceMs`, then end the rest. */
  shutdown(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

interface SocketRecord {
  socket: net.Socket;
  authenticated: boolean;
  grace: NodeJS.Timeout | undefined;
}

export interface ServerDeps {
  /** The slices of the configuration the SSH door reads. */
  config: Pick<Config, 'listen' | 'ssh' | 'session' | 'ops'>;
  backend: Backend;
  authenticator: Authenticator;
  policy: PolicySource;
  hostKeys: HostKey[];
  log: Logger;
  audit: Audit;
  metrics?: Metrics | null;
  taps?: SessionTaps;
  /** Per-identity counts shared with the other front door (browser terminals); made here if absent. */
  identities?: IdentityLimits;
  /** `ssh web-login@bridge` (src/web/ssh-web-login.ts); absent: web-login is an ordinary name. */
  webLogin?: MintLink;
}

export async function startServer({ config, backend, authenticator, policy, hostKeys, log, audit, metrics = null, taps, identities = identityLimits(config.ssh), webLogin }: ServerDeps): Promise<BridgeServer> {
  const live = new Set<Connection>();
  /** Every TCP connection from accept on, keyed by remote address, so limits apply before SSH starts. */
  const sockets = new Map<string, SocketRecord>();
  const connectionRate = new ConnectionRateLimiter(config.ssh.connectionRate);
  const shared: Shared = {
    config,
    backend,
    authenticator,
    policy,
    log,
    audit,
    taps,
    webLogin,
    backoff: new SourceBackoff(config.ssh.backoff),
    identitySessions: identities.sessions,
    identityConnections: identities.connections,
    sourceConnections: new KeyedCounter(config.ssh.maxConnectionsPerSource),
    sessions: new Set<Session>(),
    connections: new Set<ConnectionHandle>(),
    draining: { value: false },
    markAuthenticated: (remote: string) => {
      const rec = sockets.get(remote);
      if (rec && !rec.authenticated) {
        rec.authenticated = true;
        clearTimeout(rec.grace);
        rec.grace = undefined; // a cleared Timeout kept for the connection's life is 150 bytes each
        connectionRate.refund(rec.socket.remoteAddress ?? '');
      }
    },
  };
  // A changed policy reaches open connections at once: each re-resolves its credential, and one
  // whose key was removed or whose certificate was revoked is closed with a message.
  const unsubscribe = policy.subscribe(() => {
    for (const c of [...shared.connections]) c.recheck('policy changed');
  });
  const unauthenticatedCount = () => {
    let n = 0;
    for (const r of sockets.values()) if (!r.authenticated) n++;
    return n;
  };

  const server = new ssh2.Server(
    {
      hostKeys: hostKeys.map((k) => k.pem),
      ident: 'podbridge',
      algorithms: toSsh2Algorithms(config.ssh.algorithms, hostKeys.map((k) => k.type)),
      keepaliveInterval: config.ssh.keepaliveIntervalMs,
      keepaliveCountMax: config.ssh.keepaliveCountMax,
      ...(config.ssh.banner ? { banner: config.ssh.banner } : {}),
      // Our ssh2 patch 001 (not in @types/ssh2): what EXT_INFO server-sig-algs advertises.
      ...({ serverSigAlgs: SERVER_SIG_ALGS } as object),
    },
    (client: Connection, info: ClientInfo) => {
      // ssh2 emits this only after the client's version line; limits were applied at TCP accept.
      live.add(client);
      if (metrics) {
        let handshake = false;
        client.once('handshake', () => {
          handshake = true;
          metrics.handshakes.inc({ result: 'ok' });
        });
        client.once('close', () => handshake || metrics.handshakes.inc({ result: 'failed' }));
      }
      client.on('close', () => live.delete(client)); // on(), not once(): no wrapper kept per connection
      handleConnection(client, info, shared);
    },
  );

  // Our own listener: ssh2 would not see a client that never sends its version line, so the
  // login grace time, max-startups and back-off must start at TCP accept (slow-loris, scanners).
  const admit = (socket: net.Socket) => {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const ip = socket.remoteAddress ?? '';
    socket.on('error', () => {}); // resets and garbage end this socket only
    const blocked = shared.backoff.blockedFor(ip);
    if (blocked > 0 || unauthenticatedCount() >= config.ssh.maxStartups || shared.draining.value) {
      const limit = shared.draining.value ? 'shutting-down' : blocked > 0 ? 'failure-backoff' : 'max-startups';
      log.warn({ remote, limit, waitMs: blocked || undefined }, 'connection dropped by limit');
      metrics?.connections.inc({ result: limit });
      audit.emit({ event: 'limit', remote, limit, detail: blocked > 0 ? `${blocked} ms left` : String(config.ssh.maxStartups) });
      socket.destroy();
      return;
    }
    const rate = connectionRate.admit(ip);
    if (!rate.admitted) {
      // Closed before the banner: no key exchange is spent on it. Logged once per address per 10 s.
      if (rate.log) {
        const { perSecond, burst } = config.ssh.connectionRate;
        log.warn({ remote, limit: 'connection-rate', perSecond, burst, refused: rate.refusedSinceLog }, 'connection dropped by limit');
        audit.emit({ event: 'limit', remote, limit: 'connection-rate', detail: `${rate.refusedSinceLog} refused; ${perSecond}/s, burst ${burst}` });
      }
      socket.destroy();
      return;
    }
    const rec: SocketRecord = {
      socket,
      authenticated: false,
      grace: setTimeout(() => {
        log.info({ remote, seconds: config.ssh.loginGraceMs / 1000 }, 'login grace time exceeded; disconnecting');
        audit.emit({ event: 'limit', remote, limit: 'login-grace-time', detail: `${config.ssh.loginGraceMs} ms` });
        socket.destroy();
      }, config.ssh.loginGraceMs),
    };
    sockets.set(remote, rec);
    metrics?.connections.inc({ result: 'accepted' });
    // Interactive traffic is many small packets: Nagle's delay cost ~60 ms per login round trip
    // (bench: first prompt byte 100 -> 34 ms) and adds latency to every keystroke echo.
    socket.setNoDelay(true);
    socket.on('close', () => {
      clearTimeout(rec.grace);
      sockets.delete(remote);
    });
    server.injectSocket(socket);
  };
  // Behind a load balancer that speaks the PROXY protocol, its header comes first and names the
  // client; every limit, log line, audit event and from= rule must see that client, so the header
  // is read before anything else. Only from the configured peers: anyone else could forge it.
  const balancers = config.ops.proxyProtocolFrom;
  const trusted = balancers.length > 0 ? parseAddressPatterns(balancers.join(','), { allowNegation: false, allowWildcards: false }) : ({ ok: true, patterns: [] } as const);
  if (!trusted.ok) throw new Error(`--proxy-protocol-from: ${trusted.problem}`);
  const fromBalancer = (ip: string) => trusted.patterns.length > 0 && addressAllowed(trusted.patterns, ip);
  const tcp = net.createServer((socket) => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    if (!fromBalancer(socket.remoteAddress ?? '')) return admit(socket);
    socket.on('error', () => {});
    const timer = setTimeout(() => socket.destroy(new Error(`no PROXY protocol header within ${config.ssh.loginGraceMs / 1000} s`)), config.ssh.loginGraceMs);
    readProxyHeader(socket).then(
      (header) => {
        clearTimeout(timer);
        if (header.source) adoptProxiedAddress(socket, header.source);
        log.debug({ via: peer, remote: `${socket.remoteAddress}:${socket.remotePort}`, proxyProtocol: header.version }, 'PROXY protocol header read');
        admit(socket);
      },
      (err: Error) => {
        clearTimeout(timer);
        log.warn({ via: peer, err: err.message }, 'connection from a PROXY protocol peer dropped: bad or missing header');
        metrics?.connections.inc({ result: 'bad-proxy-header' });
        socket.destroy();
      },
    );
  });
  tcp.on('error', (err: Error) => log.error({ err: err.message }, 'listener error'));
  server.on('error', (err: Error) => log.error({ err: err.message }, 'ssh server error'));

  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(config.listen.port, config.listen.host, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  const address = tcp.address() as AddressInfo;
  /** Stops accepting; resolves when every socket is gone. Unauthenticated ones are cut at once. */
  const stopListening = () => {
    unsubscribe();
    const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
    for (const rec of sockets.values()) if (!rec.authenticated) rec.socket.destroy();
    return closed;
  };

  return {
    address,
    connections: () => sockets.size,
    sessions: () => shared.sessions.size,
    draining: () => shared.draining.value,
    shutdown: async (graceMs: number) => {
      shared.draining.value = true;
      const closed = stopListening();
      const sessions = [...shared.sessions];
      log.info({ sessions: sessions.length, graceSeconds: graceMs / 1000 }, 'shutdown: no new connections; waiting for sessions');
      for (const s of sessions) s.notify(`podbridge is shutting down; this session ends in ${Math.round(graceMs / 1000)} s`);
      // Delivered, not merely closed: ending a connection whose client still holds output it has
      // not written yet (a slow reader) would lose that output.
      const allDone = Promise.all(sessions.map((s) => s.delivered));
      let timer: NodeJS.Timeout | undefined;
      const expired = await Promise.race([
        allDone.then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
      ]);
      clearTimeout(timer);
      if (expired) {
        log.info({ sessions: shared.sessions.size }, 'shutdown grace period over; ending remaining sessions');
        await Promise.all([...shared.sessions].map((s) => s.end('podbridge shut down')));
      }
      for (const c of live) c.end();
      await closed;
    },
    close: async () => {
      shared.draining.value = true;
      const closed = stopListening();
      await Promise.all([...shared.sessions].map((s) => s.end('podbridge stopped')));
      for (const c of live) c.end();
      await closed;
    },
  };
}

/**
 * The SSH listener: host keys, algorithms, keepalives, the bridge-wide limits, and graceful
 * shutdown. Each connection is handled in connection.ts and isolated from the others.
 */
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import type { ClientInfo, Connection } from 'ssh2';
import type { Audit } from '../audit.ts';
import type { Backend } from '../backends/backend.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { toSsh2Algorithms } from './algorithms.ts';
import type { Authenticator } from './auth.ts';
import { handleConnection, type Shared } from './connection.ts';
import type { HostKey } from './keys.ts';
import { KeyedCounter, SourceBackoff } from './limits.ts';
import type { Session } from './session.ts';

export interface BridgeServer {
  readonly address: AddressInfo;
  /** Number of open SSH connections. */
  connections(): number;
  /** Number of live sessions. */
  sessions(): number;
  /** Stop accepting, warn every session, let them run up to `graceMs`, then end the rest. */
  shutdown(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface ServerDeps {
  config: Config;
  backend: Backend;
  authenticator: Authenticator;
  hostKeys: HostKey[];
  log: Logger;
  audit: Audit;
}

export async function startServer({ config, backend, authenticator, hostKeys, log, audit }: ServerDeps): Promise<BridgeServer> {
  const live = new Set<Connection>();
  const shared: Shared = {
    config,
    backend,
    authenticator,
    log,
    audit,
    backoff: new SourceBackoff(config.ssh.backoff),
    identitySessions: new KeyedCounter(config.ssh.maxSessionsPerIdentity),
    sessions: new Set<Session>(),
    unauthenticated: { count: 0 },
    draining: { value: false },
  };

  const server = new ssh2.Server(
    {
      hostKeys: hostKeys.map((k) => k.pem),
      ident: 'podbridge',
      algorithms: toSsh2Algorithms(config.ssh.algorithms, hostKeys.map((k) => k.type)),
      keepaliveInterval: config.ssh.keepaliveIntervalMs,
      keepaliveCountMax: config.ssh.keepaliveCountMax,
      ...(config.ssh.banner ? { banner: config.ssh.banner } : {}),
    },
    (client: Connection, info: ClientInfo) => {
      const blocked = shared.backoff.blockedFor(info.ip);
      if (blocked > 0 || shared.unauthenticated.count >= config.ssh.maxStartups) {
        const limit = blocked > 0 ? 'failure-backoff' : 'max-startups';
        log.warn({ remote: `${info.ip}:${info.port}`, limit, waitMs: blocked || undefined }, 'connection dropped by limit');
        audit.emit({ event: 'limit', remote: `${info.ip}:${info.port}`, limit, detail: blocked > 0 ? `${blocked} ms left` : String(config.ssh.maxStartups) });
        client.on('error', () => {});
        client.end();
        return;
      }
      live.add(client);
      client.once('close', () => live.delete(client));
      handleConnection(client, info, shared);
    },
  );
  server.on('error', (err: Error) => log.error({ err: err.message }, 'listener error'));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const stopListening = () => new Promise<void>((resolve) => server.close(() => resolve()));

  return {
    address,
    connections: () => live.size,
    sessions: () => shared.sessions.size,
    shutdown: async (graceMs: number) => {
      shared.draining.value = true;
      const closed = stopListening();
      const sessions = [...shared.sessions];
      log.info({ sessions: sessions.length, graceSeconds: graceMs / 1000 }, 'shutdown: no new connections; waiting for sessions');
      for (const s of sessions) s.notify(`podbridge is shutting down; this session ends in ${Math.round(graceMs / 1000)} s`);
      const allDone = Promise.all(sessions.map((s) => s.closed));
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

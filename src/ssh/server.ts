/**
 * The SSH front door: listens, authenticates each connection against authorized_keys with real
 * signature verification, and hands session channels to Session. Every connection is isolated:
 * an error in one is logged and never reaches the listener or other clients.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, ClientInfo, Connection } from 'ssh2';
import type { Backend } from '../backends/backend.ts';
import type { Config } from '../config.ts';
import type { BridgeError } from '../errors.ts';
import type { Identity } from '../identity.ts';
import type { Logger } from '../log.ts';
import { parseTarget, type Target } from '../target.ts';
import { AuthorizedKeysSource } from './authorized-keys.ts';
import type { HostKey } from './keys.ts';
import { Session } from './session.ts';

export interface BridgeServer {
  readonly address: AddressInfo;
  /** Number of open SSH connections. */
  connections(): number;
  close(): Promise<void>;
}

export interface ServerDeps {
  config: Config;
  backend: Backend;
  hostKeys: HostKey[];
  log: Logger;
}

export async function startServer({ config, backend, hostKeys, log }: ServerDeps): Promise<BridgeServer> {
  const authorizedKeys = new AuthorizedKeysSource(config.authorizedKeys, (result) => {
    if (result instanceof Error) {
      log.warn({ file: config.authorizedKeys, err: result.message }, 'cannot read authorized_keys: every login will be refused until it exists');
      return;
    }
    log.info({ file: config.authorizedKeys, keys: result.keys.length }, 'authorized_keys loaded');
    for (const p of result.problems) log.warn({ file: config.authorizedKeys, line: p.line }, `authorized_keys: ${p.reason}`);
  });
  authorizedKeys.current();

  const live = new Set<Connection>();
  const server = new ssh2.Server(
    {
      hostKeys: hostKeys.map((k) => k.pem),
      ident: 'podbridge',
      keepaliveInterval: config.ssh.keepaliveIntervalMs,
      keepaliveCountMax: config.ssh.keepaliveCountMax,
    },
    (client: Connection, info: ClientInfo) => {
      live.add(client);
      handleConnection(client, info, { config, backend, log, authorizedKeys });
      client.once('close', () => live.delete(client));
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
  return {
    address,
    connections: () => live.size,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const c of live) c.end();
      });
    },
  };
}

interface ConnectionDeps {
  config: Config;
  backend: Backend;
  log: Logger;
  authorizedKeys: AuthorizedKeysSource;
}

function handleConnection(client: Connection, info: ClientInfo, deps: ConnectionDeps): void {
  const { config, backend, authorizedKeys } = deps;
  let log = deps.log.child({ conn: randomUUID().slice(0, 8), remote: `${info.ip}:${info.port}` });
  log.debug({ client: info.header.identRaw }, 'connection');
  let identity: Identity | null = null;
  let target: Target | BridgeError | null = null;
  const sessions = new Set<Session>();

  const grace = setTimeout(() => {
    log.info({ seconds: config.ssh.loginGraceMs / 1000 }, 'login grace time exceeded; disconnecting');
    client.end();
  }, config.ssh.loginGraceMs);
  grace.unref();

  client.on('authentication', (ctx: AuthContext) => {
    if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
    const found = authorizedKeys.find(ctx.key.data);
    if (!found) {
      log.info({ user: ctx.username, key: ctx.key.algo }, 'auth refused: key not in authorized_keys');
      return ctx.reject(['publickey']);
    }
    // Without a signature the client only asks whether this key would do; with one, verify it.
    if (!ctx.signature) return ctx.accept();
    if (!ctx.blob || found.key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) {
      log.warn({ user: ctx.username, fingerprint: found.fingerprint }, 'auth refused: bad signature');
      return ctx.reject(['publickey']);
    }
    identity = { name: found.comment ?? found.fingerprint, keyFingerprint: found.fingerprint, keyComment: found.comment };
    try {
      target = parseTarget(ctx.username);
    } catch (err) {
      // Let the user in far enough to read why: a refused login would only say "Permission denied".
      target = err as BridgeError;
    }
    log = log.child({ identity: identity.name, login: ctx.username });
    log.info({ fingerprint: found.fingerprint }, 'auth accepted');
    ctx.accept();
  });

  client.on('ready', () => {
    clearTimeout(grace);
    client.on('session', (accept) => {
      const ssh = accept();
      const session = new Session(ssh, {
        backend,
        target: target!,
        identity: identity!,
        acceptEnv: config.session.acceptEnv,
        log,
      });
      sessions.add(session);
      ssh.once('close', () => sessions.delete(session));
    });
  });

  // Forwarding and other global requests are not offered yet: refuse them explicitly.
  client.on('tcpip', (_accept, reject) => reject());
  client.on('openssh.streamlocal', (_accept, reject) => reject());
  client.on('request', (_accept, reject) => reject?.());

  client.on('error', (err: Error) => log.debug({ err: err.message }, 'connection error'));
  client.on('close', () => {
    clearTimeout(grace);
    for (const s of sessions) s.onClientGone('connection closed');
    log.debug('connection closed');
  });
}

/**
 * Starts a whole bridge from one Config: host keys, backend, SSH listener. The CLI calls this;
 * tests and benchmarks call it in-process.
 */
import type { Backend } from './backends/backend.ts';
import { selectBackend } from './backends/select.ts';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { createAudit } from './audit.ts';
import { PolicySource, type ReloadResult } from './policy/index.ts';
import { policyAuthenticator } from './ssh/auth.ts';
import { loadHostKeys } from './ssh/keys.ts';
import { startServer, type BridgeServer } from './ssh/server.ts';

export interface Bridge {
  server: BridgeServer;
  backend: Backend;
  /** SIGHUP: re-read the policy (or authorized_keys); running sessions are kept. */
  reload(reason: string): ReloadResult;
  /** SIGTERM: stop accepting, let sessions finish within `graceMs`, then end them. */
  shutdown(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function startBridge(config: Config, log: Logger): Promise<Bridge> {
  const hostKeys = loadHostKeys(config.hostKeys);
  for (const key of hostKeys) {
    log.info({ file: key.file, type: key.type, fingerprint: key.fingerprint, generated: key.generated }, key.generated ? 'host key generated' : 'host key loaded');
  }

  // A policy file decides who may go where as whom; without one, authorized_keys lets every
  // listed key in with the bridge's own Kubernetes credentials. One code path either way.
  const policy = PolicySource.open(
    config.policy
      ? { file: config.policy, kind: 'policy-file', log, strictModes: config.strictModes }
      : { file: config.authorizedKeys, kind: 'authorized-keys', log, strictModes: config.strictModes },
  );
  const authenticator = policyAuthenticator(policy);
  const audit = createAudit(config.auditLog);

  const { backend, reason } = await selectBackend(config, log);
  log.info({ backend: backend.name, reason }, `backend: ${backend.describe()}`);
  if (!config.policy) {
    log.info(
      { file: config.authorizedKeys },
      backend.name === 'local'
        ? 'no --policy: every key in authorized_keys may open a shell on this machine'
        : "no --policy: every key in authorized_keys may enter any pod, acting with the bridge's own Kubernetes credentials (no impersonation)",
    );
  }

  let listen = config.listen;
  if (backend.name === 'local') {
    if (!LOOPBACK.test(listen.host) && !(config.backend === 'local' && config.listenExplicit)) {
      // A fallback to local shells must never expose this machine on the network by accident.
      log.warn({ requested: listen.host }, 'no cluster configured: serving local shells on loopback only; pass --backend local to serve them on this address');
      listen = { ...listen, host: '127.0.0.1' };
    }
    log.warn(`local backend: every authorized key gets a shell on THIS machine as ${process.env.USER ?? 'the bridge user'}`);
  }

  const server = await startServer({ config: { ...config, listen }, backend, authenticator, policy, hostKeys, log, audit });
  log.info({ address: `${server.address.address}:${server.address.port}` }, 'listening');
  return {
    server,
    backend,
    reload: (reason: string) => policy.reload(reason),
    shutdown: async (graceMs: number) => {
      policy.close();
      await server.shutdown(graceMs);
      await backend.close();
      await audit.close();
    },
    close: async () => {
      policy.close();
      await server.close();
      await backend.close();
      await audit.close();
    },
  };
}

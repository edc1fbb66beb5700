/**
 * Starts a whole bridge from one Config: host keys, backend, SSH listener. The CLI calls this;
 * tests and benchmarks call it in-process.
 */
import type { Backend } from './backends/backend.ts';
import { selectBackend } from './backends/select.ts';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';
import { loadOrCreateHostKey } from './ssh/keys.ts';
import { startServer, type BridgeServer } from './ssh/server.ts';

export interface Bridge {
  server: BridgeServer;
  backend: Backend;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function startBridge(config: Config, log: Logger): Promise<Bridge> {
  const hostKeys = config.hostKeys.map((file) => {
    const key = loadOrCreateHostKey(file);
    log.info({ file, type: key.type, fingerprint: key.fingerprint, generated: key.generated }, key.generated ? 'host key generated' : 'host key loaded');
    return key;
  });

  const { backend, reason } = await selectBackend(config, log);
  log.info({ backend: backend.name, reason }, `backend: ${backend.describe()}`);

  let listen = config.listen;
  if (backend.name === 'local') {
    if (!LOOPBACK.test(listen.host) && !(config.backend === 'local' && config.listenExplicit)) {
      // A fallback to local shells must never expose this machine on the network by accident.
      log.warn({ requested: listen.host }, 'no cluster configured: serving local shells on loopback only; pass --backend local to serve them on this address');
      listen = { ...listen, host: '127.0.0.1' };
    }
    log.warn(`local backend: every authorized key gets a shell on THIS machine as ${process.env.USER ?? 'the bridge user'}`);
  }

  const server = await startServer({ config: { ...config, listen }, backend, hostKeys, log });
  log.info({ address: `${server.address.address}:${server.address.port}` }, 'listening');
  return {
    server,
    backend,
    close: async () => {
      await server.close();
      await backend.close();
    },
  };
}

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
import { assertPatched } from './patched-dependencies.ts';
import { startDiagServer, type DiagServer } from './ops/diag-server.ts';
import { Metrics, tapAudit } from './ops/metrics.ts';
import { sessionTaps } from './ops/session-tap.ts';
import { recorder } from './ops/recording.ts';
import { startWebDoor, type WebDoor } from './web/server.ts';
import { identityLimits } from './session/limits.ts';
import { TerminalHub } from './web/terminal/hub.ts';
import type { Identity } from './policy/index.ts';
import { unpoolSmallBuffers } from './buffer-pool.ts';
import { keepHeapHeadroom } from './heap-headroom.ts';

export interface Bridge {
  server: BridgeServer;
  backend: Backend;
  /** The diagnostics port (--diag-listen), or null. */
  diag: DiagServer | null;
  /** The browser terminal (--web-listen), or null. */
  web: WebDoor | null;
  /** Browser terminals: the web door hands each authenticated terminal WebSocket to this. */
  terminals: TerminalHub;
  /** SIGHUP: re-read the policy (or authorized_keys); running sessions are kept. */
  reload(reason: string): ReloadResult;
  /** SIGTERM: stop accepting, let sessions finish within `graceMs`, then end them. */
  shutdown(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

/** After the sessions were ended: the pod-side cleanup's round trips, the audit flush. */
export const CLEANUP_BOUND_MS = 2_000;

/** How long a SIGTERM'd bridge may take at most; the supervisor's grace must be longer. */
export function stopBoundMs(config: Pick<Config, 'shutdownGraceMs' | 'session'>): number {
  return config.shutdownGraceMs + config.session.terminateGraceMs + CLEANUP_BOUND_MS;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export async function startBridge(config: Config, log: Logger): Promise<Bridge> {
  // Before anything listens: dependencies without our patches must not serve (src/patched-dependencies.ts).
  assertPatched();
  unpoolSmallBuffers();
  keepHeapHeadroom();
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
  // Metrics listen to the audit stream and each session; they exist only with a port to read them.
  let server: BridgeServer | null = null;
  let webTerminals: TerminalHub | null = null;
  const metrics = config.ops.diagListen
    ? new Metrics({ connections: () => server?.connections() ?? 0, sessions: () => server?.sessions() ?? 0, webSessions: () => webTerminals?.size() ?? 0, draining: () => server?.draining() ?? false })
    : null;
  const audit = tapAudit(createAudit(config.auditLog), metrics);

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

  const rec = config.recording;
  const taps = sessionTaps({ backend: backend.name, metrics, recorder: rec.dir ? recorder({ ...rec, dir: rec.dir }, log, metrics) : null });
  let web: WebDoor | null = null;
  // `ssh web-login@bridge` prints a one-time link into the browser door (src/web/ssh-web-login.ts).
  const webLogin = config.web.listen ? (identity: Identity, target: string | null) => web?.mintLoginLink(identity, target) ?? 'the browser terminal is starting; try again in a moment' : undefined;
  // One count of sessions per identity, whichever door (SSH, browser) they came through.
  const identities = identityLimits(config.ssh);
  const ssh = await startServer({ config: { listen, ssh: config.ssh, session: config.session, ops: config.ops }, backend, authenticator, policy, hostKeys, log, audit, metrics, taps, identities, webLogin });
  const terminals = new TerminalHub({ backend, policy, session: config.session, motd: config.ssh.motd, log, audit, taps, identities });
  webTerminals = terminals;
  server = ssh;
  log.info({ address: `${ssh.address.address}:${ssh.address.port}` }, 'listening');
  if (config.web.listen) {
    web = await startWebDoor({ config: config.web, policy, backend, log }).catch(async (err: Error) => {
      await ssh.close();
      throw err;
    });
    web.attach(terminals);
  }
  let diag: DiagServer | null = null;
  if (config.ops.diagListen && metrics) {
    diag = await startDiagServer({
      listen: config.ops.diagListen,
      metrics,
      log,
      checks: {
        listener: () => (ssh.draining() ? 'draining: shutting down, accepting no new connections' : null),
        policy: () => (policy.current() ? null : 'no policy loaded'),
        backend: async () => {
          await backend.probe?.();
          return null;
        },
      },
    }).catch(async (err: Error) => {
      await ssh.close();
      await web?.close();
      throw new Error(`--diag-listen ${config.ops.diagListen?.host}:${config.ops.diagListen?.port}: cannot listen: ${err.message}`);
    });
    log.info({ address: `${diag.address.address}:${diag.address.port}` }, 'diagnostics listening (/metrics, /healthz, /readyz)');
  }
  // Readiness goes false at once on SIGTERM (draining); the port itself stays up until the end so
  // probes read "not ready" rather than "connection refused" while sessions finish.
  const closeDiag = async () => {
    await diag?.close();
  };
  return {
    server: ssh,
    backend,
    diag,
    web,
    terminals,
    reload: (reason: string) => policy.reload(reason),
    shutdown: async (graceMs: number) => {
      policy.close();
      // Browser sessions are told and ended with the SSH ones, within the same bound.
      await Promise.all([ssh.shutdown(graceMs), terminals.shutdown(graceMs), web?.close()]);
      await backend.close();
      await audit.close();
      await closeDiag();
    },
    close: async () => {
      policy.close();
      await Promise.all([ssh.close(), terminals.close('podbridge stopped'), web?.close()]);
      await backend.close();
      await audit.close();
      await closeDiag();
    },
  };
}

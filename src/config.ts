/**
 * The one configuration object, built from the settings table (src/settings.ts: flags,
 * PODBRIDGE_* environment, `--config` file, defaults) into the shape the modules use. The zod
 * schema is the last check of that shape; a value a person wrote is checked, and named as they
 * wrote it, by the table.
 */
import { z } from 'zod';
import { DEFAULT_ALGORITHMS, checkAlgorithms } from './ssh/algorithms.ts';
import { globCanMatchPrefix, WRAPPER_RESERVED_PREFIXES } from './env-patterns.ts';
import { describeSource, resolveSettings, SettingError, type Layers, type Resolved, type SettingName, type SettingsInput } from './settings.ts';

export { DEFAULT_HOST_KEY, DEFAULT_PORT, defaultAuthorizedKeys, parseListen, type ListenAddress } from './settings.ts';

const listenSchema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
});

export const configSchema = z.object({
  listen: listenSchema,
  /** True when the listen address came from the user rather than the default. */
  listenExplicit: z.boolean(),
  hostKeys: z.array(z.string().min(1)).min(1),
  authorizedKeys: z.string().min(1),
  /** Access policy file (YAML); null: authorized_keys is the whole policy. */
  policy: z.string().min(1).nullable(),
  /** Refuse a policy or authorized_keys file that others could write (sshd StrictModes). */
  strictModes: z.boolean(),
  backend: z.enum(['auto', 'kubernetes', 'local', 'docker', 'kubernetes+docker', 'docker+kubernetes']),
  kubernetes: z.object({
    kubeconfig: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    namespace: z.string().min(1).optional(),
  }),
  /** The Docker Engine (--backend docker); unset fields follow the Docker CLI (DOCKER_HOST, contexts). */
  docker: z.object({
    host: z.string().min(1).optional(),
    tlsCa: z.string().min(1).optional(),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
  }),
  ssh: z.object({
    /** Server-to-client keepalives so idle sessions survive load balancers (they cut at ~60 s). */
    keepaliveIntervalMs: z.number().int().min(0),
    /** Unanswered keepalives before the connection is considered dead. */
    keepaliveCountMax: z.number().int().min(0),
    /** Time a connection has to authenticate, as sshd's LoginGraceTime. */
    loginGraceMs: z.number().int().min(1000),
    algorithms: z.object({
      kex: z.array(z.string()),
      serverHostKey: z.array(z.string()),
      cipher: z.array(z.string()),
      hmac: z.array(z.string()),
    }),
    /** Failed authentication requests per connection before it is dropped (sshd MaxAuthTries). */
    maxAuthTries: z.number().int().min(1),
    /** Connections that have not authenticated yet, bridge-wide (sshd MaxStartups). */
    maxStartups: z.number().int().min(1),
    /** Session channels per connection (sshd MaxSessions). */
    maxSessionsPerConnection: z.number().int().min(1),
    /** Concurrent sessions of one identity across all its connections. */
    maxSessionsPerIdentity: z.number().int().min(1),
    /** New connections per source address that have not authenticated (DHEat); see connection-rate.ts. */
    connectionRate: z.object({
      perSecond: z.number().min(0),
      burst: z.number().int().min(1),
    }),
    /** Authenticated connections of one identity at a time. */
    maxConnectionsPerIdentity: z.number().int().min(1),
    /** Authenticated connections from one source (an IPv4 address, an IPv6 /64) at a time. */
    maxConnectionsPerSource: z.number().int().min(1),
    /** A connection is closed after this long, whatever runs on it (ControlMaster, ControlPersist); 0 = off. */
    maxConnectionMs: z.number().int().min(0),
    /** Per-source back-off after repeated authentication failures. */
    backoff: z.object({
      threshold: z.number().int().min(1),
      windowMs: z.number().int().min(1),
      baseMs: z.number().int().min(0),
      maxMs: z.number().int().min(0),
    }),
    /** Text sent before authentication (file contents), or null. */
    banner: z.string().nullable(),
    /** Text printed at the start of interactive shells (file contents), or null. */
    motd: z.string().nullable(),
  }),
  session: z.object({
    /** Environment variables a client may set, as in sshd's AcceptEnv (`*` wildcards allowed). */
    acceptEnv: z.array(z.string().regex(/^[A-Za-z0-9_*?]+$/, 'a variable name or pattern')),
    /** End a session with no traffic either way for this long; 0 = off. */
    idleTimeoutMs: z.number().int().min(0),
    /** End any session after this long; 0 = off. */
    maxDurationMs: z.number().int().min(0),
    /** How long before an idle or duration cut the user is warned. */
    warningMs: z.number().int().min(0),
    /** When a session is ended from our side: SIGHUP to its processes, then SIGKILL after this. */
    terminateGraceMs: z.number().int().min(0),
    /** How long a browser terminal's process outlives a dropped WebSocket, waiting to be resumed. */
    webResumeGraceMs: z.number().int().min(0),
    /** Between WebSocket pings to a browser terminal's page; 0 = off. */
    webKeepaliveMs: z.number().int().min(0),
  }),
  /** On SIGTERM: how long sessions may go on before they are ended. */
  shutdownGraceMs: z.number().int().min(0),
  /** Audit events as JSON lines: null = off, '-' = stdout, else a file path (appended). */
  auditLog: z.string().min(1).nullable(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  ops: z.object({
    /** The diagnostics HTTP port (/metrics, /healthz, /readyz), or null for none. */
    diagListen: listenSchema.nullable(),
    /** Peers (addresses, CIDRs) whose connections start with a PROXY protocol header. */
    proxyProtocolFrom: z.array(z.string()),
  }),
  /** The browser terminal (src/web/); null listen: off. */
  web: z.object({
    listen: listenSchema.nullable(),
    tlsCert: z.string().min(1).nullable(),
    tlsKey: z.string().min(1).nullable(),
    /** The origin browsers use (https://bridge.example.com), or null: derived from listen. */
    url: z.string().min(1).nullable(),
    /** Peers whose user/groups headers are trusted (an authenticating proxy). */
    trustedProxies: z.array(z.string()),
    userHeader: z.string().min(1),
    groupsHeader: z.string().min(1),
    /** How long a cookie login lasts. */
    loginLifetimeMs: z.number().int().min(1000),
  }),
  recording: z.object({
    /** Where asciicast files go, or null for no recording. */
    dir: z.string().min(1).nullable(),
    input: z.boolean(),
    required: z.boolean(),
    maxBytes: z.number().int().min(1),
  }),
});

export type Config = z.infer<typeof configSchema>;

/** Hosts that only this machine reaches: plain HTTP is acceptable there and nowhere else. */
export function isLoopbackHost(host: string): boolean {
  return /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i.test(host);
}

/** The browser door's settings that only make sense together. */
function checkWebDoor(v: Resolved['values'], sources: Resolved['sources']): void {
  if (v.webListen === null) return;
  if ((v.webTlsCert === null) !== (v.webTlsKey === null)) {
    const given = v.webTlsCert === null ? sources.webTlsKey : sources.webTlsCert;
    throw new SettingError(`${describeSource(given, v.webTlsCert ?? v.webTlsKey)}: needs ${v.webTlsCert === null ? '--web-tls-cert' : '--web-tls-key'} too`);
  }
  if (v.webTlsCert === null && !isLoopbackHost(v.webListen.host)) {
    // Cookies and keystrokes must never cross a network in clear.
    throw new SettingError(
      `${describeSource(sources.webListen, `${v.webListen.host}:${v.webListen.port}`)}: plain HTTP is served only on a loopback address; give --web-tls-cert and --web-tls-key, or listen on 127.0.0.1 behind a TLS proxy`,
    );
  }
}

/** Settings as code passes them (tests, benchmarks): camelCase names, values as a person writes them. */
export type ConfigInput = SettingsInput;

/** For code: only the values given, then defaults. Throws a SettingError naming the setting. */
export function buildConfig(input: ConfigInput): Config {
  return configFrom(resolveSettings({ code: input }));
}

/** For the CLI: flags, then the environment, then the `--config` file, then defaults. */
export function loadConfig(layers: Layers): Config {
  return configFrom(resolveSettings(layers));
}

function configFrom({ values: v, sources }: Resolved): Config {
  const algorithms = {
    kex: v.kex ?? DEFAULT_ALGORITHMS.kex,
    serverHostKey: v.hostKeyAlgorithms ?? DEFAULT_ALGORITHMS.serverHostKey,
    cipher: v.ciphers ?? DEFAULT_ALGORITHMS.cipher,
    hmac: v.macs ?? DEFAULT_ALGORITHMS.hmac,
  };
  try {
    checkAlgorithms(algorithms);
  } catch (err) {
    const m = /^algorithms\.(\w+): (.*)$/.exec((err as Error).message);
    const setting: Record<string, SettingName> = { kex: 'kex', serverHostKey: 'hostKeyAlgorithms', cipher: 'ciphers', hmac: 'macs' };
    const name = setting[m?.[1] ?? ''];
    throw new SettingError(name ? `${describeSource(sources[name])}: ${m?.[2]}` : (err as Error).message);
  }
  // A client must never be able to set the exec wrapper's own variables (a forced command
  // could be bypassed through them): refuse accept-env patterns that could match their names.
  for (const p of v.acceptEnv) {
    if (!WRAPPER_RESERVED_PREFIXES.some((prefix) => globCanMatchPrefix(p, prefix))) continue;
    throw new SettingError(
      `${describeSource(sources.acceptEnv, v.acceptEnv)}: "${p}" could match ${WRAPPER_RESERVED_PREFIXES.map((x) => `${x}*`).join(' or ')}, names podbridge's exec wrapper keeps for itself; accept narrower names`,
    );
  }
  checkWebDoor(v, sources);
  const config = {
    listen: v.listen,
    listenExplicit: sources.listen.kind !== 'default',
    hostKeys: v.hostKey,
    authorizedKeys: v.authorizedKeys,
    policy: v.policy,
    strictModes: v.strictModes,
    backend: v.backend,
    kubernetes: { kubeconfig: v.kubeconfig, context: v.context, namespace: v.namespace },
    docker: { host: v.dockerHost, tlsCa: v.dockerTlsCa, tlsCert: v.dockerTlsCert, tlsKey: v.dockerTlsKey },
    session: {
      acceptEnv: v.acceptEnv,
      idleTimeoutMs: v.idleTimeout,
      maxDurationMs: v.maxSessionTime,
      warningMs: v.sessionWarning,
      terminateGraceMs: v.terminateGrace,
      webResumeGraceMs: v.webResumeGrace,
      webKeepaliveMs: v.webKeepalive,
    },
    ssh: {
      keepaliveIntervalMs: v.keepaliveInterval,
      keepaliveCountMax: v.keepaliveCountMax,
      loginGraceMs: v.loginGraceTime,
      algorithms,
      maxAuthTries: v.maxAuthTries,
      maxStartups: v.maxStartups,
      maxSessionsPerConnection: v.maxSessions,
      maxSessionsPerIdentity: v.maxSessionsPerIdentity,
      connectionRate: { perSecond: v.maxConnectionRate, burst: v.connectionBurst },
      maxConnectionsPerIdentity: v.maxConnectionsPerIdentity,
      maxConnectionsPerSource: v.maxConnectionsPerSource,
      maxConnectionMs: v.maxConnectionTime,
      backoff: { threshold: v.backoffThreshold, windowMs: 60_000, baseMs: 5_000, maxMs: 300_000 },
      banner: v.banner,
      motd: v.motd,
    },
    shutdownGraceMs: v.shutdownGrace,
    auditLog: v.auditLog,
    logLevel: v.logLevel,
    ops: { diagListen: v.diagListen, proxyProtocolFrom: v.proxyProtocolFrom },
    web: {
      listen: v.webListen,
      tlsCert: v.webTlsCert,
      tlsKey: v.webTlsKey,
      url: v.webUrl,
      trustedProxies: v.webTrustedProxy,
      userHeader: v.webUserHeader,
      groupsHeader: v.webGroupsHeader,
      loginLifetimeMs: v.webLoginLifetime,
    },
    recording: { dir: v.recordDir, input: v.recordInput, required: v.recordRequired, maxBytes: v.recordMaxSize },
  };
  const parsed = configSchema.safeParse(config);
  // The table checked every value a person wrote; a mismatch here is a bug in that mapping.
  if (!parsed.success) throw new Error(`internal: the settings table and the config schema disagree: ${parsed.error.message}`);
  return parsed.data;
}

/**
 * The one configuration object. CLI flags and PODBRIDGE_* environment variables (yargs) are
 * gathered into a plain object and validated here, so every module receives typed, checked values
 * with safe defaults and a bad value fails start-up with a message naming the setting.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { DEFAULT_ALGORITHMS, checkAlgorithms } from './ssh/algorithms.ts';

export const DEFAULT_PORT = 2222;

const listenSchema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
});
export type ListenAddress = z.infer<typeof listenSchema>;

export const configSchema = z.object({
  listen: listenSchema,
  /** True when the listen address came from the user rather than the default. */
  listenExplicit: z.boolean(),
  hostKeys: z.array(z.string().min(1)).min(1),
  authorizedKeys: z.string().min(1),
  /** Access policy file (YAML); null: authorized_keys is the whole policy. */
  policy: z.string().min(1).nullable(),
  backend: z.enum(['auto', 'kubernetes', 'local']),
  kubernetes: z.object({
    kubeconfig: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    namespace: z.string().min(1).optional(),
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
  }),
  /** On SIGTERM: how long sessions may go on before they are ended. */
  shutdownGraceMs: z.number().int().min(0),
  /** Audit events as JSON lines: null = off, '-' = stdout, else a file path (appended). */
  auditLog: z.string().min(1).nullable(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
});

export type Config = z.infer<typeof configSchema>;

export function defaultAuthorizedKeys(): string {
  return path.join(os.homedir(), '.ssh', 'authorized_keys');
}

export const DEFAULT_HOST_KEY = path.join('keys', 'ssh_host_ed25519_key');

/** Parses `host:port`, `[v6]:port`, `:port` or `port`; throws with the offending text. */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new Error(`invalid listen address "${text}": expected HOST:PORT, [IPv6]:PORT or PORT`);
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '127.0.0.1' : host, port };
}

/** Everything optional is filled from safe defaults before validation. */
export interface ConfigInput {
  listen?: string;
  hostKey?: string[];
  authorizedKeys?: string;
  policy?: string | null;
  backend?: string;
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  acceptEnv?: string[];
  keepaliveInterval?: number;
  keepaliveCountMax?: number;
  loginGraceTime?: number;
  kex?: string[];
  ciphers?: string[];
  macs?: string[];
  hostKeyAlgorithms?: string[];
  maxAuthTries?: number;
  maxStartups?: number;
  maxSessions?: number;
  maxSessionsPerIdentity?: number;
  /** Failed logins per minute from one address before it must wait (doubling each time). */
  backoffThreshold?: number;
  /** Unauthenticated new connections per second from one address (0 = no limit), and the burst allowed. */
  maxConnectionRate?: number;
  connectionBurst?: number;
  /** Files whose text is the pre-auth banner / message of the day. */
  banner?: string | null;
  motd?: string | null;
  idleTimeout?: number;
  /** Seconds before an idle or duration cut that the user is warned. */
  sessionWarning?: number;
  /** Seconds between HUP and KILL for a session's processes when the bridge ends it. */
  terminateGrace?: number;
  maxSessionTime?: number;
  shutdownGrace?: number;
  auditLog?: string | null;
  logLevel?: string;
}

export function buildConfig(input: ConfigInput): Config {
  const raw = {
    listen: parseListen(input.listen ?? `127.0.0.1:${DEFAULT_PORT}`),
    listenExplicit: input.listen !== undefined,
    hostKeys: input.hostKey && input.hostKey.length > 0 ? input.hostKey : [DEFAULT_HOST_KEY],
    authorizedKeys: input.authorizedKeys ?? defaultAuthorizedKeys(),
    policy: input.policy ?? null,
    backend: input.backend ?? 'auto',
    kubernetes: { kubeconfig: input.kubeconfig, context: input.context, namespace: input.namespace },
    session: {
      acceptEnv: input.acceptEnv ?? ['LANG', 'LC_*', 'LANGUAGE', 'TZ'],
      idleTimeoutMs: seconds(input.idleTimeout ?? 0),
      maxDurationMs: seconds(input.maxSessionTime ?? 12 * 3600),
      warningMs: seconds(input.sessionWarning ?? 60),
      terminateGraceMs: seconds(input.terminateGrace ?? 2),
    },
    ssh: {
      keepaliveIntervalMs: seconds(input.keepaliveInterval ?? 15),
      keepaliveCountMax: input.keepaliveCountMax ?? 4,
      loginGraceMs: seconds(input.loginGraceTime ?? 30),
      algorithms: {
        kex: input.kex ?? DEFAULT_ALGORITHMS.kex,
        serverHostKey: input.hostKeyAlgorithms ?? DEFAULT_ALGORITHMS.serverHostKey,
        cipher: input.ciphers ?? DEFAULT_ALGORITHMS.cipher,
        hmac: input.macs ?? DEFAULT_ALGORITHMS.hmac,
      },
      maxAuthTries: input.maxAuthTries ?? 6,
      maxStartups: input.maxStartups ?? 100,
      maxSessionsPerConnection: input.maxSessions ?? 10,
      maxSessionsPerIdentity: input.maxSessionsPerIdentity ?? 64,
      connectionRate: { perSecond: input.maxConnectionRate ?? 5, burst: input.connectionBurst ?? 16 },
      backoff: { threshold: input.backoffThreshold ?? 10, windowMs: 60_000, baseMs: 5_000, maxMs: 300_000 },
      banner: readTextFile(input.banner, 'ssh.banner'),
      motd: readTextFile(input.motd, 'ssh.motd'),
    },
    shutdownGraceMs: seconds(input.shutdownGrace ?? 30),
    auditLog: input.auditLog ?? null,
    logLevel: input.logLevel ?? 'info',
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid configuration: ${issue ? `${issue.path.join('.')}: ${issue.message}` : parsed.error.message}`);
  }
  try {
    checkAlgorithms(parsed.data.ssh.algorithms);
  } catch (err) {
    throw new Error(`invalid configuration: ssh.${(err as Error).message}`);
  }
  return parsed.data;
}

function readTextFile(file: string | null | undefined, setting: string): string | null {
  if (!file) return null;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`invalid configuration: ${setting}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Seconds as given by people, milliseconds as used by timers; NaN stays NaN so zod names it. */
function seconds(s: number): number {
  return Math.round(s * 1000);
}

/** sshd-style AcceptEnv matching: `*` and `?` wildcards, case-sensitive. */
export function envAccepted(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(name));
}

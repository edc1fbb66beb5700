/**
 * The one configuration object. CLI flags and PODBRIDGE_* environment variables (yargs) are
 * gathered into a plain object and validated here, so every module receives typed, checked values
 * with safe defaults and a bad value fails start-up with a message naming the setting.
 */
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

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
  backend: z.enum(['auto', 'kubernetes', 'local']),
  kubernetes: z.object({
    kubeconfig: z.string().min(1).optional(),
    context: z.string().min(1).optional(),
    namespace: z.string().min(1).optional(),
  }),
  session: z.object({
    /** Environment variables a client may set, as in sshd's AcceptEnv (`*` wildcards allowed). */
    acceptEnv: z.array(z.string().regex(/^[A-Za-z0-9_*?]+$/, 'a variable name or pattern')),
  }),
  ssh: z.object({
    /** Server-to-client keepalives so idle sessions survive load balancers (they cut at ~60 s). */
    keepaliveIntervalMs: z.number().int().min(0),
    /** Unanswered keepalives before the connection is considered dead. */
    keepaliveCountMax: z.number().int().min(0),
    /** Time a connection has to authenticate, as sshd's LoginGraceTime. */
    loginGraceMs: z.number().int().min(1000),
  }),
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
  backend?: string;
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  acceptEnv?: string[];
  keepaliveInterval?: number;
  keepaliveCountMax?: number;
  loginGraceTime?: number;
  logLevel?: string;
}

export function buildConfig(input: ConfigInput): Config {
  const raw = {
    listen: parseListen(input.listen ?? `127.0.0.1:${DEFAULT_PORT}`),
    listenExplicit: input.listen !== undefined,
    hostKeys: input.hostKey && input.hostKey.length > 0 ? input.hostKey : [DEFAULT_HOST_KEY],
    authorizedKeys: input.authorizedKeys ?? defaultAuthorizedKeys(),
    backend: input.backend ?? 'auto',
    kubernetes: { kubeconfig: input.kubeconfig, context: input.context, namespace: input.namespace },
    session: { acceptEnv: input.acceptEnv ?? ['LANG', 'LC_*', 'LANGUAGE', 'TZ'] },
    ssh: {
      keepaliveIntervalMs: (input.keepaliveInterval ?? 15) * 1000,
      keepaliveCountMax: input.keepaliveCountMax ?? 4,
      loginGraceMs: (input.loginGraceTime ?? 30) * 1000,
    },
    logLevel: input.logLevel ?? 'info',
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid configuration: ${issue ? `${issue.path.join('.')}: ${issue.message}` : parsed.error.message}`);
  }
  return parsed.data;
}

/** sshd-style AcceptEnv matching: `*` and `?` wildcards, case-sensitive. */
export function envAccepted(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(name));
}

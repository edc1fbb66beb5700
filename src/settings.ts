/**
 * The one table of settings. Each row gives a setting's flag (`--idle-timeout`), environment
 * variable (`PODBRIDGE_IDLE_TIMEOUT`), config-file key (`idle-timeout:`), help line, default and
 * parser; the CLI's options, the validation, the error messages and docs/configuration.md are all
 * made from it, so a setting is written once.
 *
 * Values are taken from, in order of precedence: flags, the environment, the `--config` file, the
 * default. Every error names the setting as the user wrote it (`--idle-timeout "abc": …`,
 * `PODBRIDGE_IDLE_TIMEOUT="abc": …`, `podbridge.yaml: idle-timeout: …`) in one line.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { closestWord } from './words.ts';

/** A value that cannot be used; the resolver adds where the value came from. */
export class SettingError extends Error {}

type Group = 'Where and who' | 'Sessions' | 'The SSH front door' | 'The web front door' | 'Logging and audit' | 'Operations';

interface Setting<T> {
  group: Group;
  /** The help line; also the docs' text unless `doc` says more. */
  describe: string;
  doc?: string;
  /** Shown as the default in help and docs. */
  defaultText: string;
  default: () => T;
  /** From a flag or environment string, or a config-file (YAML) value. */
  parse: (raw: unknown) => T;
  /** Repeatable flag; comma- or space-separated in the environment; a list in the file. */
  list?: boolean;
  /** A switch: `--name` / `--no-name`; yes/no, true/false, 1/0 in the environment. */
  flag?: boolean;
  choices?: readonly string[];
}

// ---- parsers: each takes what a person wrote and returns a value or throws a SettingError

function text(raw: unknown): string {
  if (typeof raw === 'number') return String(raw);
  if (typeof raw !== 'string' || raw.trim() === '') throw new SettingError('expected a non-empty text');
  return raw;
}

function number(raw: unknown, what: string): number {
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(n)) throw new SettingError(`expected ${what}`);
  return n;
}

/** Seconds as people write them (`30`, `1.5`), milliseconds as timers use them. */
function seconds(min: number): (raw: unknown) => number {
  return (raw) => {
    const s = number(raw, 'a number of seconds');
    if (s < min) throw new SettingError(`must be at least ${min} ${min === 1 ? 'second' : 'seconds'}`);
    return Math.round(s * 1000);
  };
}

function integer(min: number): (raw: unknown) => number {
  return (raw) => {
    const n = number(raw, 'a whole number');
    if (!Number.isInteger(n)) throw new SettingError('expected a whole number');
    if (n < min) throw new SettingError(`must be at least ${min}`);
    return n;
  };
}

function choice<const C extends readonly string[]>(choices: C): (raw: unknown) => C[number] {
  return (raw) => {
    const v = text(raw);
    if (!choices.includes(v)) throw new SettingError(`expected one of ${choices.join(', ')}${hint(v, choices)}`);
    return v;
  };
}

function list<T>(item: (raw: unknown) => T): (raw: unknown) => T[] {
  return (raw) => {
    const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/[\s,]+/).filter((s) => s !== '') : [raw];
    return items.map(item);
  };
}

function yesNo(raw: unknown): boolean {
  if (typeof raw === 'boolean') return raw;
  const v = typeof raw === 'string' ? raw.trim().toLowerCase() : String(raw);
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new SettingError('expected yes or no (true/false, 1/0)');
}

/** A size in bytes as people write it: `1048576`, `512k`, `100M`, `2G` (powers of 1024). */
function bytes(raw: unknown): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)i?b?$/i.exec(typeof raw === 'number' ? String(raw) : typeof raw === 'string' ? raw.trim() : '');
  if (!m) throw new SettingError('expected a size such as 1048576, 512k, 100M or 2G');
  const n = Math.round(Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase()));
  if (n < 1) throw new SettingError('must be at least 1 byte');
  return n;
}

/** `10.0.0.0/8,192.168.1.7`: addresses and CIDR networks, checked when the bridge starts. */
function networks(raw: unknown): string[] {
  const items = list(text)(raw);
  for (const item of items) {
    const [addr, prefix, extra] = item.split('/');
    const ok = extra === undefined && net.isIP(addr ?? '') !== 0 && (prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= (net.isIPv4(addr ?? '') ? 32 : 128)));
    if (!ok) throw new SettingError(`"${item}" is not an address or CIDR network (10.0.0.0/8, 192.168.1.7, fd00::/8)`);
  }
  return items;
}

function optionalText(raw: unknown): string | null {
  return raw === null || raw === '' ? null : text(raw);
}

/** A file whose contents are the value (banner, motd). */
function fileText(raw: unknown): string | null {
  const file = optionalText(raw);
  if (file === null) return null;
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new SettingError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function hint(word: string, candidates: readonly string[]): string {
  const near = closestWord(word, candidates);
  return near === null ? '' : ` (did you mean ${near}?)`;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** `host:port`, `[v6]:port`, `:port` or `port`. */
export function parseListen(textValue: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(textValue) ?? /^()()(\d+)$/.exec(textValue);
  const port = m ? Number(m[3]) : NaN;
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new SettingError(`invalid listen address "${textValue}": expected HOST:PORT, [IPv6]:PORT or PORT`);
  }
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '127.0.0.1' : host, port };
}

const ENV_NAME = /^[A-Za-z0-9_*?]+$/;
const BACKENDS = ['auto', 'kubernetes', 'local', 'docker', 'kubernetes+docker', 'docker+kubernetes'] as const;

export const DEFAULT_PORT = 2222;
export const DEFAULT_HOST_KEY = path.join('keys', 'ssh_host_ed25519_key');
export function defaultAuthorizedKeys(): string {
  return path.join(os.homedir(), '.ssh', 'authorized_keys');
}

const setting = <T>(s: Setting<T>): Setting<T> => s;
/** Parsers for rows that need them beyond the common ones above. */
export const parsers = { text, optionalText, seconds, integer, choice, list, yesNo, fileText };

export const SETTINGS = {
  // ---- where and who
  listen: setting({
    group: 'Where and who',
    describe: 'Address to listen on: HOST:PORT, [IPv6]:PORT or PORT',
    defaultText: `127.0.0.1:${DEFAULT_PORT}`,
    default: () => ({ host: '127.0.0.1', port: DEFAULT_PORT }),
    parse: (raw) => parseListen(text(raw)),
  }),
  hostKey: setting({
    group: 'Where and who',
    describe: 'Host private key file or directory of keys (a Secret mount); a missing file is generated (ed25519)',
    doc: 'Host private key files or directories (a Secret mount). A missing file is generated as ed25519 (0600) on first start and reused afterwards; an empty directory gets one. Refused: keys readable by others, or by a group this process is not in (`chmod 600`; a Secret mounted with `defaultMode: 0440` and the pod\'s `fsGroup` is accepted, see [deployment.md](deployment.md)), RSA under 3072 bits, other types, two keys of one type. Fingerprints are logged at start-up. `podbridge keygen [FILE] [--type rsa --bits 4096]` makes one ahead of time.',
    defaultText: DEFAULT_HOST_KEY,
    default: () => [DEFAULT_HOST_KEY],
    parse: list(text),
    list: true,
  }),
  authorizedKeys: setting({
    group: 'Where and who',
    describe: 'OpenSSH authorized_keys file of the keys allowed in (without --policy)',
    doc: 'Without `--policy`: the keys allowed in, as sshd reads them (options such as `from=`, `no-pty`, `command=`, `expiry-time=`, `restrict` are honoured). Every key may go anywhere and the bridge acts with its own Kubernetes credentials. Re-read when the file changes.',
    defaultText: '~/.ssh/authorized_keys',
    default: defaultAuthorizedKeys,
    parse: text,
  }),
  policy: setting({
    group: 'Where and who',
    describe: 'Access policy file (YAML): identities, certificate authorities, rules, impersonation; see docs/policy.md',
    doc: 'The access policy (YAML): identities, keys and certificate principals, trusted user CAs and revocations, allow rules, and whom to impersonate in Kubernetes. See [policy.md](policy.md). Reloaded on SIGHUP and when the file changes; a bad edit keeps the last good policy.',
    defaultText: 'none',
    default: (): string | null => null,
    parse: optionalText,
  }),
  backend: setting({
    group: 'Where and who',
    describe: 'Where sessions run: kubernetes, docker, local, both (kubernetes+docker: names without a docker~/k8s~ prefix go to the first), or auto (kubernetes if a kubeconfig or in-cluster config exists, else local shells)',
    doc: '`kubernetes`, `docker` ([docker.md](docker.md)), `local`, `kubernetes+docker` / `docker+kubernetes` (both; a login name without a `docker~`/`k8s~` prefix goes to the first), or `auto`: Kubernetes when `--kubeconfig`, `$KUBECONFIG`, `~/.kube/config` or an in-cluster service account is found, else local shells. The start-up log says which and why.',
    defaultText: 'auto',
    default: () => 'auto' as const,
    parse: choice(BACKENDS),
    choices: BACKENDS,
  }),
  kubeconfig: setting({
    group: 'Where and who',
    describe: 'kubeconfig file',
    defaultText: '$KUBECONFIG, ~/.kube/config, in-cluster',
    default: (): string | undefined => undefined,
    parse: text,
  }),
  context: setting({
    group: 'Where and who',
    describe: 'kubeconfig context',
    defaultText: "the kubeconfig's current-context",
    default: (): string | undefined => undefined,
    parse: text,
  }),
  namespace: setting({
    group: 'Where and who',
    describe: 'Namespace for login names without one',
    defaultText: "the context's namespace, else default",
    default: (): string | undefined => undefined,
    parse: text,
  }),
  strictModes: setting({
    group: 'Where and who',
    describe: 'Refuse a policy or authorized_keys file that others could write (sshd StrictModes); --no-strict-modes turns it off',
    doc: "Refuse a policy or authorized_keys file (or a directory above it) that is not owned by root or the bridge's user, or that group/others could write (sshd's StrictModes; sticky directories and read-only mounts such as ConfigMap/Secret volumes pass). `--no-strict-modes` turns it off.",
    defaultText: 'yes',
    default: () => true,
    parse: yesNo,
    flag: true,
  }),
  dockerHost: setting({
    group: 'Where and who',
    describe: 'Docker Engine: unix:///PATH or tcp://HOST:PORT',
    defaultText: '$DOCKER_HOST, the Docker CLI context, unix:///var/run/docker.sock',
    default: (): string | undefined => undefined,
    parse: text,
  }),
  dockerTlsCa: setting({
    group: 'Where and who',
    describe: 'CA certificate of a tcp:// Docker Engine',
    defaultText: '$DOCKER_CERT_PATH/ca.pem with DOCKER_TLS_VERIFY',
    default: (): string | undefined => undefined,
    parse: text,
  }),
  dockerTlsCert: setting({
    group: 'Where and who',
    describe: 'Client certificate for a tcp:// Docker Engine',
    defaultText: '$DOCKER_CERT_PATH/cert.pem with DOCKER_TLS_VERIFY',
    default: (): string | undefined => undefined,
    parse: text,
  }),
  dockerTlsKey: setting({
    group: 'Where and who',
    describe: 'Client key for a tcp:// Docker Engine',
    defaultText: '$DOCKER_CERT_PATH/key.pem with DOCKER_TLS_VERIFY',
    default: (): string | undefined => undefined,
    parse: text,
  }),
  acceptEnv: setting({
    group: 'Where and who',
    describe: 'Environment variables clients may set (sshd AcceptEnv; * and ? wildcards)',
    doc: 'Variables a client may set with `SendEnv`/`SetEnv`, as sshd\'s `AcceptEnv` (`*`, `?` wildcards). Everything else is refused. A pattern that could match `PODBRIDGE_*` or `pb_*` (the exec wrapper\'s own names; `*` included) is refused when the configuration loads.',
    defaultText: 'LANG LC_* LANGUAGE TZ',
    default: () => ['LANG', 'LC_*', 'LANGUAGE', 'TZ'],
    parse: list((raw) => {
      const v = text(raw);
      if (!ENV_NAME.test(v)) throw new SettingError(`"${v}" is not a variable name or pattern (letters, digits, _, * and ?)`);
      return v;
    }),
    list: true,
  }),
  // ---- sessions
  idleTimeout: setting({
    group: 'Sessions',
    describe: 'Seconds without traffic in either direction before a session is ended (0 = off)',
    defaultText: '0 (off)',
    default: () => 0,
    parse: seconds(0),
  }),
  maxSessionTime: setting({
    group: 'Sessions',
    describe: 'Seconds after which any session is ended (0 = off)',
    defaultText: '43200 (12 h)',
    default: () => 12 * 3600 * 1000,
    parse: seconds(0),
  }),
  sessionWarning: setting({
    group: 'Sessions',
    describe: 'Seconds before an idle or duration cut that the user is told',
    defaultText: '60',
    default: () => 60_000,
    parse: seconds(0),
  }),
  terminateGrace: setting({
    group: 'Sessions',
    describe: "Seconds between HUP and KILL for the processes of a session the bridge ends",
    defaultText: '2',
    default: () => 2000,
    parse: seconds(0),
  }),
  shutdownGrace: setting({
    group: 'Sessions',
    describe: 'On SIGTERM: seconds sessions may go on before they are ended (the process exits within this + --terminate-grace + 2 s)',
    doc: 'On SIGTERM: stop accepting, report not ready, tell every session, let them run this long, then end them (HUP, `--terminate-grace`, KILL in the pod). The process exits within this + `--terminate-grace` + 2 s: 9 s with the defaults, inside `docker stop`\'s 10 s. For a longer drain raise it and the supervisor\'s grace with it (Kubernetes `terminationGracePeriodSeconds` ≥ the sum + 1). See [operations.md](operations.md).',
    defaultText: '5',
    default: () => 5_000,
    parse: seconds(0),
  }),
  motd: setting({
    group: 'Sessions',
    describe: 'File printed at the start of interactive shells',
    defaultText: 'none',
    default: (): string | null => null,
    parse: fileText,
  }),
  webResumeGrace: setting({
    group: 'Sessions',
    describe: 'Seconds a browser terminal keeps running after its page lost the connection, for the same user to resume it',
    doc: 'Seconds a browser terminal\'s process keeps running after its WebSocket dropped (a refresh, a laptop asleep, a network change), so that the same identity can reattach with the screen restored. Past this the process is ended as any session the bridge ends (HUP, `--terminate-grace`, KILL): nothing is left running. An explicit "end session" in the page ends it at once.',
    defaultText: '60',
    default: () => 60_000,
    parse: seconds(0),
  }),
  webKeepalive: setting({
    group: 'Sessions',
    describe: 'Seconds between WebSocket pings to a browser terminal\'s page (0 = off)',
    doc: 'Seconds between WebSocket pings to each browser terminal\'s page (0 = off): below the idle cut of proxies in front (60 s for many). A page that for a whole interval neither answers a ping nor drains the bytes queued for it is cut as gone (a laptop asleep); its terminal then waits `--web-resume-grace` to be resumed.',
    defaultText: '20',
    default: () => 20_000,
    parse: seconds(0),
  }),
  // ---- the SSH front door
  keepaliveInterval: setting({
    group: 'The SSH front door',
    describe: 'Seconds between SSH keepalives to the client (0 = off)',
    doc: 'Seconds between SSH keepalives to the client (0 = off); below the 60 s idle cut of common load balancers. The Kubernetes exec stream has its own WebSocket pings.',
    defaultText: '15',
    default: () => 15_000,
    parse: seconds(0),
  }),
  keepaliveCountMax: setting({
    group: 'The SSH front door',
    describe: 'Unanswered keepalives before the connection counts as dead',
    defaultText: '4',
    default: () => 4,
    parse: integer(0),
  }),
  loginGraceTime: setting({
    group: 'The SSH front door',
    describe: 'Seconds a TCP connection has to authenticate (counted from accept)',
    defaultText: '30',
    default: () => 30_000,
    parse: seconds(1),
  }),
  maxAuthTries: setting({
    group: 'The SSH front door',
    describe: 'Failed authentication requests per connection',
    defaultText: '6',
    default: () => 6,
    parse: integer(1),
  }),
  backoffThreshold: setting({
    group: 'The SSH front door',
    describe: 'Failed logins per minute from one address before it must wait 5 s, doubling to 5 min',
    defaultText: '10',
    default: () => 10,
    parse: integer(1),
  }),
  maxStartups: setting({
    group: 'The SSH front door',
    describe: 'Concurrent connections that have not authenticated yet',
    defaultText: '100',
    default: () => 100,
    parse: integer(1),
  }),
  maxConnectionRate: setting({
    group: 'The SSH front door',
    describe: 'New connections per second one address may open that do not authenticate (DHEat; 0 = off)',
    doc: 'New connections per second one address may open that do not authenticate (the DHEat key-exchange flood; 0 = off). A connection that authenticates gives its token back, so NAT-ed users and repeated logins are not throttled. See [security.md](security.md).',
    defaultText: '5',
    default: () => 5,
    parse: (raw) => {
      const n = number(raw, 'a number of connections per second');
      if (n < 0) throw new SettingError('must be at least 0');
      return n;
    },
  }),
  connectionBurst: setting({
    group: 'The SSH front door',
    describe: 'Connections one address may open at once before --max-connection-rate applies',
    defaultText: '16',
    default: () => 16,
    parse: integer(1),
  }),
  maxSessions: setting({
    group: 'The SSH front door',
    describe: 'Sessions per connection',
    defaultText: '10',
    default: () => 10,
    parse: integer(1),
  }),
  maxSessionsPerIdentity: setting({
    group: 'The SSH front door',
    describe: 'Concurrent sessions of one identity across its connections',
    defaultText: '64',
    default: () => 64,
    parse: integer(1),
  }),
  maxConnectionsPerIdentity: setting({
    group: 'The SSH front door',
    describe: 'Concurrent authenticated connections of one identity',
    doc: 'Concurrent authenticated connections of one identity; the one over the limit is told why in one line.',
    defaultText: '64',
    default: () => 64,
    parse: integer(1),
  }),
  maxConnectionsPerSource: setting({
    group: 'The SSH front door',
    describe: 'Concurrent authenticated connections from one address (IPv6: one /64)',
    defaultText: '256',
    default: () => 256,
    parse: integer(1),
  }),
  maxConnectionTime: setting({
    group: 'The SSH front door',
    describe: 'Seconds after which a connection is closed, sessions and all (0 = off)',
    doc: 'Seconds after which a connection is closed, its sessions told why (0 = off); a warning comes `--session-warning` seconds before.',
    defaultText: '86400 (24 h)',
    default: () => 24 * 3600 * 1000,
    parse: seconds(0),
  }),
  kex: setting({
    group: 'The SSH front door',
    describe: 'Key exchange algorithms offered',
    doc: 'The key exchange algorithms offered; each name is checked against what the SSH library supports. See [security.md](security.md).',
    defaultText: 'mlkem768x25519 and sntrup761x25519 (post-quantum), curve25519, DH group 16/18',
    default: (): string[] | undefined => undefined,
    parse: list(text),
    list: true,
  }),
  ciphers: setting({
    group: 'The SSH front door',
    describe: 'Ciphers offered',
    defaultText: 'chacha20-poly1305, AES-GCM, AES-CTR',
    default: (): string[] | undefined => undefined,
    parse: list(text),
    list: true,
  }),
  macs: setting({
    group: 'The SSH front door',
    describe: 'MACs offered',
    defaultText: 'hmac-sha2-256/512-etm',
    default: (): string[] | undefined => undefined,
    parse: list(text),
    list: true,
  }),
  hostKeyAlgorithms: setting({
    group: 'The SSH front door',
    describe: 'Host key signature algorithms offered',
    defaultText: 'ssh-ed25519 rsa-sha2-512 rsa-sha2-256',
    default: (): string[] | undefined => undefined,
    parse: list(text),
    list: true,
  }),
  banner: setting({
    group: 'The SSH front door',
    describe: 'File sent to clients before authentication',
    defaultText: 'none',
    default: (): string | null => null,
    parse: fileText,
  }),
  // ---- the web front door
  webListen: setting({
    group: 'The web front door',
    describe: 'Address of the browser terminal (HTTPS; plain HTTP only on loopback): HOST:PORT; off when unset',
    doc: 'Address of the browser terminal: the page, the target picker and one WebSocket per terminal, in this process. HTTPS with `--web-tls-cert`/`--web-tls-key`; without them only a loopback address is accepted (plain HTTP). Off when unset. See [web.md](web.md).',
    defaultText: 'none (off)',
    default: (): ListenAddress | null => null,
    parse: (raw) => parseListen(text(raw)),
  }),
  webTlsCert: setting({
    group: 'The web front door',
    describe: 'PEM certificate (chain) of the browser terminal; with --web-tls-key it serves HTTPS',
    defaultText: 'none',
    default: (): string | null => null,
    parse: optionalText,
  }),
  webTlsKey: setting({
    group: 'The web front door',
    describe: 'PEM private key of --web-tls-cert',
    defaultText: 'none',
    default: (): string | null => null,
    parse: optionalText,
  }),
  webUrl: setting({
    group: 'The web front door',
    describe: 'The URL browsers use to reach the page (https://bridge.example.com), when it differs from --web-listen (a proxy or ingress in front)',
    doc: 'The URL browsers use to reach the page, e.g. `https://bridge.example.com`, when a proxy or ingress in front changes it. Links printed by `ssh web-login@bridge` start with it, and it is the only Origin a WebSocket upgrade or a login may come from. Default: the scheme, host and port of `--web-listen` (the Host header the browser sent when it listens on every address).',
    defaultText: 'from --web-listen',
    default: (): string | null => null,
    parse: (raw) => {
      const v = optionalText(raw);
      if (v === null) return null;
      let url: URL;
      try {
        url = new URL(v);
      } catch {
        throw new SettingError(`"${v}" is not a URL (https://bridge.example.com)`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new SettingError(`"${v}" must start with https:// (or http:// on loopback)`);
      return url.origin;
    },
  }),
  webTrustedProxy: setting({
    group: 'The web front door',
    describe: 'Addresses or CIDR networks of an authenticating proxy (oauth2-proxy) whose user and groups headers are trusted',
    doc: 'Addresses or CIDR networks of an authenticating proxy in front (oauth2-proxy, an OIDC ingress). Requests from these addresses are logged in as the user in `--web-user-header`; the same header from any other address is refused and logged. See [web.md](web.md).',
    defaultText: 'none',
    default: (): string[] => [],
    parse: networks,
    list: true,
  }),
  webUserHeader: setting({
    group: 'The web front door',
    describe: "Header in which the trusted proxy names the user: a policy identity's name or certificate principal",
    defaultText: 'X-Forwarded-User',
    default: () => 'X-Forwarded-User',
    parse: text,
  }),
  webGroupsHeader: setting({
    group: 'The web front door',
    describe: "Header in which the trusted proxy lists the user's groups (logged and audited; rules match the policy's own groups)",
    defaultText: 'X-Forwarded-Groups',
    default: () => 'X-Forwarded-Groups',
    parse: text,
  }),
  webLoginLifetime: setting({
    group: 'The web front door',
    describe: 'Seconds a browser login (the cookie from a one-time link) lasts',
    defaultText: '43200 (12 h)',
    default: () => 12 * 3600 * 1000,
    parse: seconds(60),
  }),
  // ---- logging and audit
  auditLog: setting({
    group: 'Logging and audit',
    describe: 'Audit events as JSON lines: a file (appended; created 0600), or - for stdout',
    defaultText: 'none',
    default: (): string | null => null,
    parse: optionalText,
  }),
  logLevel: setting({
    group: 'Logging and audit',
    describe: 'Log level: fatal, error, warn, info, debug, trace or silent (JSON lines on stdout; readable lines when stdout is a terminal)',
    defaultText: 'info',
    default: () => 'info' as const,
    parse: choice(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const),
    choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
  }),
  // ---- operations
  diagListen: setting({
    group: 'Operations',
    describe: 'Address of the diagnostics HTTP port (/metrics, /healthz, /readyz): HOST:PORT; off when unset',
    doc: 'Address of the plain-HTTP diagnostics port: `/metrics` (Prometheus), `/healthz` (alive), `/readyz` (listening, policy loaded, backend reachable, not draining). Keep it off the SSH load balancer. See [operations.md](operations.md).',
    defaultText: 'none (off)',
    default: (): { host: string; port: number } | null => null,
    parse: (raw) => parseListen(text(raw)),
  }),
  proxyProtocolFrom: setting({
    group: 'Operations',
    describe: 'Addresses or CIDR networks of load balancers whose PROXY protocol (v1 or v2) header is required and trusted',
    doc: 'Load balancers (addresses or CIDR networks) that put a PROXY protocol v1 or v2 header in front of each connection (HAProxy `send-proxy`/`send-proxy-v2`, AWS NLB, ...). A connection from these addresses must start with one, and the client address in it is what limits, logs, audit and `from=`/`source-address` rules see. A header from any other address is refused. See [operations.md](operations.md).',
    defaultText: 'none',
    default: (): string[] => [],
    parse: networks,
    list: true,
  }),
  recordDir: setting({
    group: 'Operations',
    describe: 'Directory for session recordings: one asciicast v3 file per terminal session',
    doc: 'Directory for session recordings: one [asciicast v3](https://docs.asciinema.org/manual/asciicast/v3/) file per TTY session (output, resizes, exit status; `asciinema play FILE`). Commands without a terminal and file transfers get audit events, not recordings. See [operations.md](operations.md).',
    defaultText: 'none (off)',
    default: (): string | null => null,
    parse: optionalText,
  }),
  recordInput: setting({
    group: 'Operations',
    describe: 'Also record what users type (passwords typed at prompts included)',
    defaultText: 'false',
    default: () => false,
    parse: yesNo,
    flag: true,
  }),
  recordRequired: setting({
    group: 'Operations',
    describe: 'Fail closed: refuse a TTY session whose recording cannot be opened, end one whose recording cannot be written',
    defaultText: 'false',
    default: () => false,
    parse: yesNo,
    flag: true,
  }),
  recordMaxSize: setting({
    group: 'Operations',
    describe: 'Largest recording of one session (512k, 100M, 1G); past it recording stops (the session too with --record-required)',
    defaultText: '100M',
    default: () => 100 * 1024 * 1024,
    parse: bytes,
  }),
};

export type SettingName = keyof typeof SETTINGS;
type ValueOf<K extends SettingName> = ReturnType<(typeof SETTINGS)[K]['parse']> | ReturnType<(typeof SETTINGS)[K]['default']>;
/** Every setting's parsed value. */
export type SettingValues = { [K in SettingName]: ValueOf<K> };
/** What code (tests, benchmarks) may pass: any setting, written as a person would. */
export type SettingsInput = { [K in SettingName]?: string | number | boolean | readonly string[] | null };

export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

export const flagName = (name: SettingName): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
export const envName = (name: SettingName): string => `PODBRIDGE_${flagName(name).replace(/-/g, '_').toUpperCase()}`;
const ENV_PREFIX = 'PODBRIDGE_';
/** Environment variables of ours that are not settings. */
const OTHER_ENV = new Set(['PODBRIDGE_CONFIG', 'PODBRIDGE_DEBIAN13_ROOT']);

/** Where a value came from, as the user would name it in an error. */
export type Source = { kind: 'flag' | 'env' | 'file' | 'code' | 'default'; label: string };

export interface Resolved {
  values: SettingValues;
  sources: Record<SettingName, Source>;
}

export interface Layers {
  /** Flags as parsed (camelCase keys; only those given). */
  flags?: Partial<Record<string, unknown>>;
  env?: NodeJS.ProcessEnv;
  /** The `--config` file, or null. */
  configFile?: string | null;
  /** Values set by code (tests); they win over everything. */
  code?: SettingsInput;
}

/** Builds every setting from its layers; throws a SettingError whose message names the source. */
export function resolveSettings(layers: Layers): Resolved {
  const fileValues = layers.configFile ? readConfigFile(layers.configFile) : {};
  const env = layers.env ?? {};
  for (const key of Object.keys(env)) {
    if (!key.startsWith(ENV_PREFIX) || OTHER_ENV.has(key) || SETTING_NAMES.some((n) => envName(n) === key)) continue;
    throw new SettingError(`${key}: no such setting${hint(key, SETTING_NAMES.map(envName))}; unset it`);
  }
  const values = {} as Record<SettingName, unknown>;
  const sources = {} as Record<SettingName, Source>;
  for (const name of SETTING_NAMES) {
    const def = SETTINGS[name] as Setting<unknown>;
    let raw: unknown;
    let source: Source;
    if (layers.code && layers.code[name] !== undefined) {
      raw = layers.code[name];
      source = { kind: 'code', label: flagName(name) };
    } else if (layers.flags && layers.flags[name] !== undefined) {
      raw = layers.flags[name];
      source = { kind: 'flag', label: `--${flagName(name)}` };
    } else if (env[envName(name)] !== undefined) {
      raw = env[envName(name)];
      source = { kind: 'env', label: envName(name) };
    } else if (name in fileValues) {
      raw = fileValues[name];
      source = { kind: 'file', label: `${layers.configFile}: ${flagName(name)}` };
    } else {
      values[name] = def.default();
      sources[name] = { kind: 'default', label: `--${flagName(name)}` };
      continue;
    }
    try {
      values[name] = def.parse(raw);
    } catch (err) {
      if (!(err instanceof SettingError)) throw err;
      throw new SettingError(`${describeSource(source, raw)}: ${err.message}`);
    }
    sources[name] = source;
  }
  return { values: values as SettingValues, sources };
}

/** `--idle-timeout "abc"`, `PODBRIDGE_IDLE_TIMEOUT="abc"`, `podbridge.yaml: idle-timeout`. */
export function describeSource(source: Source, raw?: unknown): string {
  if (source.kind === 'file' || raw === undefined) return source.label;
  const shown = Array.isArray(raw) ? raw.join(' ') : String(raw);
  return source.kind === 'env' ? `${source.label}="${shown}"` : `${source.label} "${shown}"`;
}

function readConfigFile(file: string): Partial<Record<SettingName, unknown>> {
  let data: unknown;
  try {
    data = YAML.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new SettingError(`${file}: ${e.code === 'ENOENT' ? 'no such file' : e.code ? `cannot read it (${e.code})` : `not valid YAML or JSON: ${e.message.split('\n')[0]}`}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) throw new SettingError(`${file}: expected settings as "name: value" lines`);
  const out: Partial<Record<SettingName, unknown>> = {};
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    // Keys as the flags are written (idle-timeout), or camelCase (idleTimeout).
    const name = SETTING_NAMES.find((n) => flagName(n) === key || n === key);
    if (name === undefined) throw new SettingError(`${file}: ${key}: no such setting${hint(key, SETTING_NAMES.map(flagName))}`);
    out[name] = value;
  }
  return out;
}

/** `--idle-timout` → ` (did you mean --idle-timeout?)`, for yargs' unknown-argument errors. */
export function flagHint(typed: string): string {
  return hint(typed.replace(/^-+/, ''), SETTING_NAMES.map(flagName)).replace(/mean (\S+)\?/, 'mean --$1?');
}

/** The settings as yargs options: strings, parsed by the table (so errors can quote them). */
export function yargsOptions(): Record<string, { type: 'string' | 'boolean'; array?: boolean; describe: string; defaultDescription: string; choices?: readonly string[]; group: string; requiresArg: boolean }> {
  const out: ReturnType<typeof yargsOptions> = {};
  for (const name of SETTING_NAMES) {
    const s = SETTINGS[name] as Setting<unknown>;
    out[flagName(name)] = {
      type: s.flag ? 'boolean' : 'string',
      ...(s.list ? { array: true } : {}),
      // The help hides yargs' type/default extras (see cli.ts), so the default is in the text.
      describe: `${s.describe} [default: ${s.defaultText}]`,
      defaultDescription: s.defaultText,
      ...(s.choices ? { choices: s.choices } : {}),
      group: `${s.group}:`,
      requiresArg: !s.flag,
    };
  }
  return out;
}

/** The settings tables of docs/configuration.md, made from this table. */
export function settingsDoc(): string {
  const groups = new Map<Group, string[]>();
  for (const name of SETTING_NAMES) {
    const s = SETTINGS[name] as Setting<unknown>;
    const rows = groups.get(s.group) ?? [];
    const flag = `\`--${flagName(name)}\`${s.list ? ' (repeatable)' : ''}`;
    rows.push(`| ${flag}<br>\`${envName(name)}\` | ${s.defaultText} | ${(s.doc ?? s.describe).replace(/\|/g, '\\|')} |`);
    groups.set(s.group, rows);
  }
  return [...groups]
    .map(([group, rows]) => [`### ${group}`, '', '| flag / environment | default | meaning |', '| --- | --- | --- |', ...rows].join('\n'))
    .join('\n\n');
}

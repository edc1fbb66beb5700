/**
 * Where the Docker Engine is, decided as the Docker CLI decides it (docker/cli
 * cli/command/cli.go resolveContextName and the context store), so `podbridge serve --backend
 * docker` reaches the same Engine that `docker ps` does for the same user:
 *   1. --docker-host (podbridge's flag, like `docker -H`);
 *   2. DOCKER_HOST, with TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH;
 *   3. DOCKER_CONTEXT, else `currentContext` of $DOCKER_CONFIG/config.json (~/.docker), read
 *      from contexts/meta/<sha256(name)>/meta.json (Endpoints.docker.Host, SkipTLSVerify) with
 *      its TLS files in contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem;
 *   4. unix:///var/run/docker.sock.
 * Only unix:// and tcp:// (http://, https://) are spoken; ssh:// and npipe:// are refused with
 * what to do instead.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

export interface TlsFiles {
  ca: Buffer | null;
  cert: Buffer | null;
  key: Buffer | null;
  /** False only when a context says SkipTLSVerify (or DOCKER_TLS without DOCKER_TLS_VERIFY). */
  verify: boolean;
}

export type EngineEndpoint =
  | { kind: 'unix'; socketPath: string; url: string }
  | { kind: 'tcp'; host: string; port: number; tls: TlsFiles | null; url: string };

export interface ResolvedEndpoint {
  endpoint: EngineEndpoint;
  /** Where the choice came from, for the start-up log: `--docker-host`, `DOCKER_HOST`, `context "prod"`. */
  source: string;
}

export interface EndpointOptions {
  host?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export function resolveEndpoint(options: EndpointOptions, env: NodeJS.ProcessEnv = process.env, home = os.homedir()): ResolvedEndpoint {
  const explicitTls = options.tlsCa !== undefined || options.tlsCert !== undefined || options.tlsKey !== undefined;
  const flagTls = (): TlsFiles => ({ ca: readOpt(options.tlsCa, '--docker-tls-ca'), cert: readOpt(options.tlsCert, '--docker-tls-cert'), key: readOpt(options.tlsKey, '--docker-tls-key'), verify: true });
  if (options.host !== undefined && options.host !== '') {
    return { endpoint: parseHost(options.host, explicitTls ? flagTls() : envTls(env, home), '--docker-host'), source: '--docker-host' };
  }
  if (env.DOCKER_HOST) {
    return { endpoint: parseHost(env.DOCKER_HOST, explicitTls ? flagTls() : envTls(env, home), 'DOCKER_HOST'), source: 'DOCKER_HOST' };
  }
  const configDir = env.DOCKER_CONFIG || path.join(home, '.docker');
  const contextName = env.DOCKER_CONTEXT || currentContext(configDir);
  if (contextName !== null && contextName !== 'default') {
    const id = createHash('sha256').update(contextName).digest('hex');
    const metaFile = path.join(configDir, 'contexts', 'meta', id, 'meta.json');
    const from = `context "${contextName}"`;
    let meta: { Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } } };
    try {
      meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as typeof meta;
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist (see docker context ls)' : (err as Error).message;
      throw new Error(`Docker ${from} (from ${env.DOCKER_CONTEXT ? 'DOCKER_CONTEXT' : `${path.join(configDir, 'config.json')}`}): cannot read ${metaFile}: ${why}`);
    }
    const docker = meta.Endpoints?.docker;
    if (docker?.Host === undefined || docker.Host === '') throw new Error(`Docker ${from} has no Docker endpoint (Endpoints.docker.Host in ${metaFile})`);
    const tlsDir = path.join(configDir, 'contexts', 'tls', id, 'docker');
    const files = { ca: readIfExists(path.join(tlsDir, 'ca.pem')), cert: readIfExists(path.join(tlsDir, 'cert.pem')), key: readIfExists(path.join(tlsDir, 'key.pem')) };
    const hasTls = files.ca !== null || files.cert !== null || files.key !== null;
    const tls: TlsFiles | null = explicitTls ? flagTls() : hasTls || docker.SkipTLSVerify === true ? { ...files, verify: docker.SkipTLSVerify !== true } : null;
    return { endpoint: parseHost(docker.Host, tls, from), source: from };
  }
  return { endpoint: parseHost(DEFAULT_DOCKER_HOST, null, 'default'), source: 'default socket' };
}

/** `unix:///path`, `tcp://host:port`, `http://`, `https://` (TLS). */
export function parseHost(text: string, tls: TlsFiles | null, setting: string): EngineEndpoint {
  const scheme = /^([a-z]+):\/\//.exec(text)?.[1];
  if (scheme === 'unix') {
    const socketPath = text.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new Error(`${setting}: "${text}" must name an absolute socket path (unix:///var/run/docker.sock)`);
    return { kind: 'unix', socketPath, url: text };
  }
  if (scheme === 'tcp' || scheme === 'http' || scheme === 'https') {
    let url: URL;
    try {
      url = new URL(`http://${text.slice(scheme.length + 3)}`);
    } catch {
      throw new Error(`${setting}: "${text}" is not a valid tcp://HOST:PORT address`);
    }
    const useTls = scheme === 'https' ? (tls ?? { ca: null, cert: null, key: null, verify: true }) : scheme === 'http' ? null : tls;
    const port = url.port === '' ? (useTls ? 2376 : 2375) : Number(url.port);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    return { kind: 'tcp', host, port, tls: useTls, url: `${useTls ? 'tcp+tls' : 'tcp'}://${url.host.includes(':') ? url.host : `${url.host}:${port}`}` };
  }
  if (scheme === 'ssh') throw new Error(`${setting}: "${text}": ssh:// Docker hosts are not supported; forward the Engine's socket instead (ssh -L /tmp/docker.sock:/var/run/docker.sock HOST) and pass unix:///tmp/docker.sock`);
  if (scheme === 'npipe') throw new Error(`${setting}: "${text}": Windows named pipes are not supported; podbridge reaches Linux Engines over unix:// or tcp://`);
  throw new Error(`${setting}: "${text}" is not a Docker host: expected unix:///PATH or tcp://HOST:PORT`);
}

/** The Docker CLI's environment: DOCKER_TLS_VERIFY (any value) turns TLS on with verification;
 *  DOCKER_TLS alone turns it on without; files from DOCKER_CERT_PATH, else ~/.docker. */
function envTls(env: NodeJS.ProcessEnv, home: string): TlsFiles | null {
  const verify = Boolean(env.DOCKER_TLS_VERIFY);
  if (!verify && !env.DOCKER_TLS) return null;
  const dir = env.DOCKER_CERT_PATH || env.DOCKER_CONFIG || path.join(home, '.docker');
  return { ca: readIfExists(path.join(dir, 'ca.pem')), cert: readIfExists(path.join(dir, 'cert.pem')), key: readIfExists(path.join(dir, 'key.pem')), verify };
}

function currentContext(configDir: string): string | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(configDir, 'config.json'), 'utf8');
  } catch {
    return null;
  }
  try {
    const parsed = JSON.parse(text) as { currentContext?: unknown };
    return typeof parsed.currentContext === 'string' && parsed.currentContext !== '' ? parsed.currentContext : null;
  } catch (err) {
    throw new Error(`${path.join(configDir, 'config.json')} is not valid JSON: ${(err as Error).message}`);
  }
}

function readIfExists(file: string): Buffer | null {
  try {
    return fs.readFileSync(file);
  } catch {
    return null;
  }
}

function readOpt(file: string | undefined, flag: string): Buffer | null {
  if (file === undefined) return null;
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Our own small Docker Engine API client over node:http: JSON requests, the hijacked exec stream
 * and the API version handshake. Not dockerode: we need the raw upgraded socket (half-close for
 * stdin EOF, pause/resume for backpressure) and the Engine's own error words.
 *
 * Versions (moby's client does the same): `GET /_ping` answers with an `Api-Version` header; we
 * speak min(that, MAX_API_VERSION) with every path prefixed `/v1.xx`, and refuse an Engine below
 * MIN_API_VERSION with a message that says so. Docker 29 refuses clients below 1.44, so the
 * ceiling must stay at or above what current Engines require.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { BridgeError } from '../../errors.ts';
import type { EngineEndpoint } from './endpoint.ts';

/** Exec's WorkingDir arrived in API 1.35 (Docker 17.12); everything else we use is older. */
export const MIN_API_VERSION = '1.35';
/** The newest API we have read the documentation of (moby api/swagger.yaml). */
export const MAX_API_VERSION = '1.51';
/** An Engine that sends no Api-Version header is older than 1.24 (moby client's fallback). */
const FALLBACK_API_VERSION = '1.24';

/** JSON answers we read are small; anything near this is not an answer we want in memory. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** A refusal by the Engine (HTTP status and its `message`), or a transport failure (status null). */
export class EngineError extends Error {
  override readonly name = 'EngineError';
  constructor(
    message: string,
    /** null: no HTTP answer (connection refused, socket missing, timeout). */
    readonly status: number | null,
    /** errno code of a transport failure (ENOENT, ECONNREFUSED, EACCES...). */
    readonly errno: string | null = null,
  ) {
    super(message);
  }
}

export interface HijackedStream {
  socket: Duplex;
  /** Bytes that arrived with the response head: the start of the stream, never to be lost. */
  head: Buffer;
}

export interface EngineClientOptions {
  /** Connect and answer timeout of every request and of the exec upgrade. */
  timeoutMs?: number;
}

export class EngineClient {
  private negotiated: Promise<string> | null = null;
  private readonly timeoutMs: number;
  private readonly agent: http.Agent;

  constructor(
    readonly endpoint: EngineEndpoint,
    options: EngineClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    // Short JSON calls reuse connections (a TLS handshake per call would dominate); hijacked
    // streams always get a socket of their own.
    const agentOptions = { keepAlive: true, maxFreeSockets: 4 };
    this.agent = endpoint.kind === 'tcp' && endpoint.tls ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** The API version this Engine and we share; asks once, again after a failure. */
  apiVersion(): Promise<string> {
    this.negotiated ??= this.negotiate().catch((err: unknown) => {
      this.negotiated = null;
      throw err;
    });
    return this.negotiated;
  }

  /** Forget the version (the Engine went away and may come back upgraded). */
  reset(): void {
    this.negotiated = null;
  }

  /** One JSON request; the parsed body on 2xx, an EngineError with the Engine's words otherwise. */
  async json<T>(method: string, apiPath: string, body?: unknown): Promise<{ status: number; body: T }> {
    const version = await this.apiVersion();
    const res = await this.send(method, `/v${version}${apiPath}`, body);
    const text = (await readBody(res)).toString('utf8');
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw new EngineError(engineMessage(text, status), status);
    return { status, body: (text === '' ? null : JSON.parse(text)) as T };
  }

  /** A request whose answer is a long stream (events); the caller reads and destroys it. */
  async stream(apiPath: string): Promise<http.IncomingMessage> {
    const version = await this.apiVersion();
    const res = await this.send('GET', `/v${version}${apiPath}`, undefined, 0);
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw new EngineError(engineMessage((await readBody(res)).toString('utf8'), status), status);
    return res;
  }

  /** POST with `Connection: Upgrade` / `Upgrade: tcp`; resolves with the raw socket on 101. */
  async hijack(apiPath: string, body: unknown): Promise<HijackedStream> {
    const version = await this.apiVersion();
    return new Promise<HijackedStream>((resolve, reject) => {
      const req = this.request('POST', `/v${version}${apiPath}`, { Connection: 'Upgrade', Upgrade: 'tcp', 'Content-Type': 'application/json' }, true);
      req.setTimeout(this.timeoutMs, () => req.destroy(new EngineError(`no answer from the Docker Engine at ${this.endpoint.url} within ${this.timeoutMs / 1000} s`, null, 'ETIMEDOUT')));
      req.on('upgrade', (_res, socket, head) => {
        socket.setTimeout(0);
        resolve({ socket, head });
      });
      req.on('response', (res) => {
        void readBody(res).then(
          (buf) => reject(new EngineError(engineMessage(buf.toString('utf8'), res.statusCode ?? 0), res.statusCode ?? 0)),
          reject,
        );
      });
      req.on('error', (err) => reject(transportError(err, this.endpoint)));
      req.end(JSON.stringify(body));
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private async negotiate(): Promise<string> {
    const res = await this.send('GET', '/_ping', undefined);
    await readBody(res);
    if ((res.statusCode ?? 0) >= 500) throw new EngineError(`the Docker Engine at ${this.endpoint.url} answered /_ping with HTTP ${res.statusCode}`, res.statusCode ?? 0);
    const header = res.headers['api-version'];
    const server = typeof header === 'string' && /^1\.\d+$/.test(header) ? header : FALLBACK_API_VERSION;
    const engine = typeof res.headers.server === 'string' ? res.headers.server : 'Docker Engine';
    const chosen = negotiateVersion(server);
    if (chosen === null) {
      throw new BridgeError('unsupported', `the Docker Engine at ${this.endpoint.url} (${engine}) speaks API ${server}, older than the ${MIN_API_VERSION} podbridge needs (Docker 17.12 or newer); upgrade the Engine`, {
        detail: { serverApi: server, min: MIN_API_VERSION },
      });
    }
    return chosen;
  }

  private send(method: string, fullPath: string, body: unknown, timeoutMs = this.timeoutMs): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = body === undefined ? {} : { 'Content-Type': 'application/json' };
      const req = this.request(method, fullPath, headers, false);
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new EngineError(`no answer from the Docker Engine at ${this.endpoint.url} within ${timeoutMs / 1000} s`, null, 'ETIMEDOUT')));
      }
      req.on('response', (res) => {
        // Streams (events) must not time out while quiet once the answer began.
        if (timeoutMs === 0) res.socket.setTimeout(0);
        resolve(res);
      });
      req.on('error', (err) => reject(transportError(err, this.endpoint)));
      req.end(body === undefined ? undefined : JSON.stringify(body));
    });
  }

  private request(method: string, fullPath: string, headers: Record<string, string>, ownSocket: boolean): http.ClientRequest {
    const ep = this.endpoint;
    const common: http.RequestOptions = { method, path: fullPath, headers, agent: ownSocket ? false : this.agent };
    // Over a socket there is no host name; over TCP the real one (TLS checks it) stays.
    if (ep.kind === 'unix') return http.request({ ...common, headers: { Host: 'docker', ...headers }, socketPath: ep.socketPath });
    if (ep.tls === null) return http.request({ ...common, host: ep.host, port: ep.port });
    return https.request({
      ...common,
      host: ep.host,
      port: ep.port,
      ca: ep.tls.ca ?? undefined,
      cert: ep.tls.cert ?? undefined,
      key: ep.tls.key ?? undefined,
      rejectUnauthorized: ep.tls.verify,
      servername: /^[\d.:]+$/.test(ep.host) ? undefined : ep.host,
    });
  }
}

/** min(server, ours), or null when the server is below our minimum. */
export function negotiateVersion(server: string): string | null {
  if (compareVersions(server, MIN_API_VERSION) < 0) return null;
  return compareVersions(server, MAX_API_VERSION) < 0 ? server : MAX_API_VERSION;
}

export function compareVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am !== bm ? am - bm : an - bn;
}

/** The Engine answers errors as `{"message": "..."}`; keep its words. */
function engineMessage(text: string, status: number): string {
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string' && parsed.message !== '') return parsed.message.trim();
  } catch {
    // not JSON: use the text itself
  }
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat !== '' ? flat.slice(0, 300) : `HTTP ${status}`;
}

function transportError(err: Error, ep: EngineEndpoint): EngineError {
  if (err instanceof EngineError) return err;
  const errno = (err as NodeJS.ErrnoException).code ?? null;
  return new EngineError(`${err.message}`, null, errno ?? (ep.kind === 'tcp' && ep.tls ? 'TLS' : null));
}

function readBody(res: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.destroy(new Error(`the Docker Engine's answer exceeds ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
  });
}

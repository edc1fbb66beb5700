/**
 * The connection to one API server: TLS and credentials from the kubeconfig (through
 * client-node's `applyToHTTPSOptions`, so exec plugins, OIDC and token files all work), per-call
 * headers (impersonation), and a small JSON GET that keeps the Status body of refusals.
 *
 * Not client-node's generated API: it throws away the Status of some errors, cannot carry
 * per-call headers, and we need only three GETs.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node/dist/config.js';
import { BridgeError } from '../../../errors.ts';
import { connectTimeout, credentialFailure, networkFailure, type ApiServerRef } from './api-errors.ts';
import { TlsContextCache } from './tls-context.ts';

/** Extra headers for one call, e.g. Impersonate-User / Impersonate-Group. */
export type RequestHeaders = Readonly<Record<string, string | readonly string[]>>;

export interface ApiResponse {
  /** HTTP status code. */
  status: number;
  /** Parsed JSON, or null when the body was empty or not JSON. */
  body: unknown;
}

/** TLS, auth and headers for one request; also what `ws` takes for the exec upgrade. */
export type ConnectionOptions = https.RequestOptions;

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const BODY_TIMEOUT_MS = 30_000;
// Pod lists are filtered by label selector; anything near this is a runaway response.
const MAX_BODY_BYTES = 32 * 1024 * 1024;

export class KubeApiClient implements ApiServerRef {
  readonly server: string;
  readonly contextName: string;
  readonly connectTimeoutMs: number;
  private readonly kc: KubeConfig;
  private readonly tlsContexts = new TlsContextCache();

  constructor(kc: KubeConfig, api: ApiServerRef, connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS) {
    this.kc = kc;
    this.server = api.server;
    this.contextName = api.contextName;
    this.connectTimeoutMs = connectTimeoutMs;
  }

  /** Absolute URL for an API path; keeps any path prefix of the server URL (Rancher, proxies). */
  url(path: string, query?: URLSearchParams): URL {
    const url = new URL(this.server + path);
    if (query !== undefined) url.search = query.toString();
    return url;
  }

  /** Fresh per call: exec plugins and token files may rotate credentials at any time. */
  async connectionOptions(headers: RequestHeaders): Promise<ConnectionOptions> {
    const opts: ConnectionOptions = {};
    try {
      await this.kc.applyToHTTPSOptions(opts);
    } catch (err) {
      throw credentialFailure(err, this);
    }
    this.tlsContexts.apply(opts);
    opts.headers = { ...opts.headers, ...headers } as http.OutgoingHttpHeaders;
    return opts;
  }

  /** GET a JSON document. Resolves with any HTTP answer (the caller decides what a 404 means);
   *  rejects only with a BridgeError for the network, TLS, credentials or a timeout. */
  async getJson(path: string, headers: RequestHeaders, query?: URLSearchParams): Promise<ApiResponse> {
    const opts = await this.connectionOptions(headers);
    const url = this.url(path, query);
    const request = url.protocol === 'http:' ? http.request : https.request;

    return new Promise<ApiResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: BridgeError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.destroy();
        reject(err);
      };
      // Until the response headers arrive: covers DNS, connect, TLS and a server that hangs.
      let timer = setTimeout(() => fail(connectTimeout(this, this.connectTimeoutMs, connected())), this.connectTimeoutMs);

      const req = request(
        url,
        { ...opts, method: 'GET', headers: { ...opts.headers, Accept: 'application/json' } },
        (res) => {
          clearTimeout(timer);
          timer = setTimeout(
            () => fail(new BridgeError('api-unreachable', `the Kubernetes API server at ${this.server} stopped sending its answer to GET ${path}`)),
            BODY_TIMEOUT_MS,
          );
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_BODY_BYTES) {
              fail(new BridgeError('internal', `the Kubernetes API server at ${this.server} sent more than ${MAX_BODY_BYTES} bytes for GET ${path}`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('error', (err) => fail(networkFailure(err, this)));
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, body: parseJson(Buffer.concat(chunks)) });
          });
        },
      );
      const connected = watchConnected(req);
      req.on('error', (err) => fail(networkFailure(err, this)));
      req.end();
    });
  }
}

/** Whether the request's TCP connection is up yet: a timeout then says "no answer" rather than
 *  "unreachable" (every request to the API server, plain or upgraded, watches this). */
export function watchConnected(request: http.ClientRequest): () => boolean {
  let connected = false;
  request.on('socket', (socket: Socket) => {
    if (!socket.connecting) connected = true;
    else socket.once('connect', () => (connected = true));
  });
  return () => connected;
}

function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) return null;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
}

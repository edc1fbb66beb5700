/**
 * Upgrading one request to the API server into a byte stream: the one way exec and port-forward
 * do it, over SPDY/3.1 (POST with `Upgrade: SPDY/3.1` and one `X-Stream-Protocol-Version` per
 * protocol offered; the 101 names the choice) and over WebSocket (ws, subprotocols). Each fails
 * with a BridgeError: a connect timeout that says whether TCP connected, a network failure, the
 * caller's reading of an HTTP answer other than 101, or a refusal of the protocol, marked so that
 * the caller's fallback tries the next protocol (markProtocolRefusal).
 */
import http from 'node:http';
import https from 'node:https';
import type { ClientRequest, IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { BridgeError, type ErrorCode } from '../../../errors.ts';
import { connectTimeout, networkFailure } from '../api/api-errors.ts';
import { watchConnected, type KubeApiClient, type RequestHeaders } from '../api/client.ts';

export interface UpgradeRequest {
  path: string;
  query?: URLSearchParams;
  /** Offered, newest first: X-Stream-Protocol-Version values (SPDY) or subprotocols (WebSocket). */
  protocols: readonly string[];
  /** What is upgraded, as messages name it: "exec", "port-forward". */
  what: string;
  /** The API server answered with `httpStatus` instead of 101: the caller's error, marked with
   *  markProtocolRefusal when it refuses the protocol rather than the request. */
  refused(httpStatus: number, body: Buffer): BridgeError;
}

export interface WebSocketUpgradeRequest extends UpgradeRequest {
  /** The error code when the server closes before the handshake completed. */
  closedEarly: ErrorCode;
  maxPayload?: number;
  /** Send the one protocol as a raw Sec-WebSocket-Protocol header and check the answer here:
   *  ws takes only RFC 6455 tokens as subprotocols, and "SPDY/3.1+portforward.k8s.io" has a '/'
   *  (Go's gorilla/websocket does not check); ws would also refuse an answer it did not offer. */
  rawProtocol?: boolean;
}

const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** The body of a refusal (a Status, or a proxy's text), at most 64 KiB of it. */
export function readBody(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      if (size >= MAX_ERROR_BODY_BYTES) return;
      size += chunk.length;
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => resolve(Buffer.concat(chunks)));
  });
}

/** Refusals that are about the protocol, not the request: the next protocol may be accepted. */
const protocolRefusals = new WeakSet<BridgeError>();

export function markProtocolRefusal(err: BridgeError): BridgeError {
  protocolRefusals.add(err);
  return err;
}

export function isProtocolRefusal(err: unknown): boolean {
  return err instanceof BridgeError && protocolRefusals.has(err);
}

/** client-node makes a plain https.Agent per request. An upgraded socket never goes back to it,
 *  yet the socket's connect options would keep it (its maps and, through them, the TLS options)
 *  for the whole session: both upgrades connect without it, with the same options and the
 *  shared TLS context. A proxy agent (another class) stays. */
function dropRequestAgent<T extends https.RequestOptions>(opts: T): T {
  if (opts.agent instanceof https.Agent && opts.agent.constructor === https.Agent) delete opts.agent;
  return opts;
}

/** Request options that are not for the connection. A socket keeps the options it was connected
 *  with for its whole life (Node's `kConnectOptions`): given the request's, every exec socket held
 *  its request headers, the Bearer token among them, and ws's handshake callback, about 1.2 KiB
 *  per idle session. */
const NOT_CONNECTION_OPTIONS = new Set([
  'headers', 'auth', 'method', 'path', 'agent', 'createConnection', 'finishRequest', 'timeout', 'setHost', 'defaultPort',
  'handshakeTimeout', 'perMessageDeflate', 'followRedirects', 'maxRedirects', 'maxPayload', 'protocolVersion', 'origin',
  'generateMask', 'allowSynchronousEvents', 'autoPong', 'skipUTF8Validation', 'socketPath', '_defaultAgent',
]);

/** What an agent would do to connect (https.Agent names the server for SNI unless it is an IP
 *  address), without one, and with only the connection's own options (see above). */
function connectTls(options: http.ClientRequestArgs): Socket {
  const o = Object.fromEntries(Object.entries(options).filter(([k]) => !NOT_CONNECTION_OPTIONS.has(k))) as tls.ConnectionOptions;
  const host = o.host ?? 'localhost';
  return tls.connect({ ...o, servername: o.servername ?? (net.isIP(host) ? undefined : host) });
}

function connectPlain(options: http.ClientRequestArgs): Socket {
  return net.createConnection(options as net.NetConnectOpts);
}

/** Upgrades a POST to SPDY/3.1; resolves with the raw socket, the bytes that came with the 101,
 *  and the protocol the server chose (client-go's SpdyRoundTripper checks the same headers). */
export async function upgradeSpdy(api: KubeApiClient, headers: RequestHeaders, req: UpgradeRequest): Promise<{ socket: Duplex; head: Buffer; protocol: string }> {
  const opts = dropRequestAgent(await api.connectionOptions(headers));
  const url = api.url(req.path, req.query);
  const plain = url.protocol === 'http:';
  const request = plain ? http.request : https.request;
  const unsupported = (why: string) => markProtocolRefusal(new BridgeError('unsupported', `the Kubernetes API server at ${api.server} ${why}`));

  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: BridgeError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      r.destroy();
      reject(err);
    };
    const r = request(url, {
      ...opts,
      // With no agent, the request connects by itself, as ws does (see dropRequestAgent).
      ...(opts.agent === undefined ? { createConnection: plain ? connectPlain : connectTls } : {}),
      method: 'POST',
      headers: { ...opts.headers, Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': [...req.protocols], 'Content-Length': '0' },
    });
    const connected = watchConnected(r);
    const timer = setTimeout(() => fail(connectTimeout(api, api.connectTimeoutMs, connected())), api.connectTimeoutMs);
    r.on('error', (err) => fail(networkFailure(err, api)));
    r.on('response', (res) => {
      readBody(res).then(
        (body) => fail(req.refused(res.statusCode ?? 0, body)),
        (err: unknown) => fail(networkFailure(err, api)),
      );
    });
    r.on('upgrade', (res, socket: Duplex, head: Buffer) => {
      if (settled) return void socket.destroy();
      const connection = String(res.headers.connection ?? '').toLowerCase();
      const upgrade = String(res.headers.upgrade ?? '').toLowerCase();
      const chosen = String(res.headers['x-stream-protocol-version'] ?? '');
      if (!connection.includes('upgrade') || !upgrade.includes('spdy/3.1')) {
        socket.destroy();
        return fail(unsupported(`answered the SPDY ${req.what} upgrade with "Upgrade: ${upgrade}"`));
      }
      if (!req.protocols.includes(chosen)) {
        socket.destroy();
        return fail(unsupported(`chose ${req.what} protocol "${chosen}" over SPDY, which podbridge does not speak`));
      }
      settled = true;
      clearTimeout(timer);
      (socket as Socket).setNoDelay?.(true);
      resolve({ socket, head, protocol: chosen });
    });
    r.end();
  });
}

/** What the handshake's request tells the upgrade: whether TCP connected (so a timeout can say
 *  "unreachable" or "no answer") and, with a raw protocol header, the protocol answered. */
interface HandshakeWatch {
  connected: () => boolean;
  rawChosen: string;
}

/** ws's finishRequest. The TLS socket keeps the options it was connected with, this function
 *  among them, for the whole session: made out here, it holds only `watch`, not the scope of
 *  upgradeWebSocket (the URL with its long exec query, the request, the API client), which was
 *  about 2 KiB per idle session. */
function finishRequestFor(watch: HandshakeWatch, rawProtocol: boolean): (request: ClientRequest) => void {
  return (request) => {
    watch.connected = watchConnected(request);
    if (rawProtocol) {
      request.prependListener('upgrade', (res: IncomingMessage) => {
        watch.rawChosen = String(res.headers['sec-websocket-protocol'] ?? '');
        delete res.headers['sec-websocket-protocol'];
      });
    }
    request.end();
  };
}

/** Opens a WebSocket offering the request's protocols and hands it, with the protocol the server
 *  chose, to `take` in the same turn as the handshake (frames that came with the 101 are emitted
 *  on the next tick: `take` attaches its listeners before that). Our listeners are gone by then;
 *  an error `take` throws fails the upgrade. */
export async function upgradeWebSocket<T>(
  api: KubeApiClient,
  headers: RequestHeaders,
  req: WebSocketUpgradeRequest,
  take: (ws: WebSocket, protocol: string) => T,
): Promise<T> {
  // ws connects by itself with the same TLS options when there is no agent.
  const conn = dropRequestAgent(await api.connectionOptions(headers));
  const url = api.url(req.path, req.query);
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  const unsupported = (why: string) =>
    markProtocolRefusal(new BridgeError('unsupported', `the Kubernetes API server at ${api.server} speaks none of ${req.protocols.join(', ')} for ${req.what} over WebSocket (${why})`));
  const watch: HandshakeWatch = { connected: () => false, rawChosen: '' };
  // ws passes these through to https.request, so client-node's agent, CA, client certificate and
  // Authorization header apply unchanged; its typings only narrow the header value type.
  const options = {
    ...conn,
    handshakeTimeout: api.connectTimeoutMs,
    perMessageDeflate: false,
    followRedirects: false,
    ...(req.maxPayload !== undefined ? { maxPayload: req.maxPayload } : {}),
    ...(req.rawProtocol ? { headers: { ...conn.headers, 'Sec-WebSocket-Protocol': req.protocols.join(', ') } } : {}),
    finishRequest: finishRequestFor(watch, req.rawProtocol === true),
    // ws connects as the SPDY upgrade does (a proxy agent, when there is one, connects instead).
    ...(conn.agent === undefined && url.protocol === 'wss:' ? { createConnection: connectTls } : {}),
  } as WebSocket.ClientOptions;

  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, req.rawProtocol ? [] : [...req.protocols], options);
    let settled = false;
    const fail = (err: BridgeError) => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(err);
    };
    ws.on('unexpected-response', (_request, res) => {
      readBody(res).then(
        (body) => fail(req.refused(res.statusCode ?? 0, body)),
        (err: unknown) => fail(networkFailure(err, api)),
      );
    });
    ws.on('error', (err) => {
      if (err.message === 'Opening handshake has timed out') return fail(connectTimeout(api, api.connectTimeoutMs, watch.connected()));
      if (/subprotocol/i.test(err.message)) return fail(unsupported(err.message));
      fail(networkFailure(err, api));
    });
    ws.on('close', () => fail(new BridgeError(req.closedEarly, `the Kubernetes API server at ${api.server} closed the ${req.what} connection before it opened`)));
    ws.on('open', () => {
      if (settled) return;
      const protocol = req.rawProtocol ? watch.rawChosen : ws.protocol;
      if (!req.protocols.includes(protocol)) return fail(unsupported(`it answered subprotocol "${protocol}"`));
      // The caller installs its own listeners; ours must not outlive the handshake.
      ws.removeAllListeners();
      // ws keeps the URL for its `url` getter only; ours carries the whole command in its query
      // (the wrapper script: ~1.3 KiB per idle session). Nothing reads it after the handshake.
      (ws as unknown as { _url: string })._url = `${url.origin}${url.pathname}`;
      try {
        const taken = take(ws, protocol);
        settled = true;
        resolve(taken);
      } catch (err) {
        fail(err instanceof BridgeError ? err : new BridgeError('internal', String(err), { cause: err }));
      }
    });
  });
}

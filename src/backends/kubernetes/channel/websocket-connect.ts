/**
 * Opens the exec WebSocket: offers the given subprotocols and hands the open socket over as a
 * channel transport, or rejects with a BridgeError for a refused upgrade.
 */
import type { ClientRequest } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { BridgeError } from '../../../errors.ts';
import { connectTimeout, networkFailure } from '../api/api-errors.ts';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { execPath, execQuery, markProtocolRefusal, readBody, refusedUpgrade, refusesProtocol, type ExecRequest } from './exec-request.ts';
import { EXEC_SUBPROTOCOLS, protocolVersion } from './websocket-frames.ts';
import { WebSocketTransport } from './websocket.ts';

// Frames from the API server are at most a few tens of KiB; this only stops a runaway peer.
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** Opens the exec WebSocket offering `protocols` (newest first). Events that arrive before the
 *  caller attaches to the transport are kept for it. */
export async function connectWebSocket(
  api: KubeApiClient,
  headers: RequestHeaders,
  req: ExecRequest,
  protocols: readonly string[] = EXEC_SUBPROTOCOLS,
): Promise<WebSocketTransport> {
  const conn = await api.connectionOptions(headers);
  // client-node makes a plain https.Agent per request. An upgraded socket never goes back to it,
  // yet the socket's connect options would keep it (and its maps) for the whole session: ws
  // connects by itself with the same TLS options instead. A proxy agent (another class) stays.
  if (conn.agent instanceof https.Agent && conn.agent.constructor === https.Agent) delete conn.agent;
  const url = api.url(execPath(req.target), execQuery(req));
  url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
  // ws passes these through to https.request, so client-node's agent, CA, client certificate and
  // Authorization header apply unchanged; its typings only narrow the header value type.
  let connected = false;
  const options = {
    ...conn,
    handshakeTimeout: api.connectTimeoutMs,
    perMessageDeflate: false,
    followRedirects: false,
    maxPayload: MAX_FRAME_BYTES,
    // Only to learn whether TCP connected, so a timeout can say "unreachable" or "no answer".
    finishRequest: (request: ClientRequest) => {
      request.on('socket', (socket: Socket) => {
        if (!socket.connecting) connected = true;
        else socket.once('connect', () => (connected = true));
      });
      request.end();
    },
  } as WebSocket.ClientOptions;

  return new Promise<WebSocketTransport>((resolve, reject) => {
    const ws = new WebSocket(url, [...protocols], options);
    let settled = false;
    const fail = (err: BridgeError) => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(err);
    };

    ws.on('unexpected-response', (_request, res) => {
      readBody(res).then(
        (body) => {
          const err = refusedUpgrade(api, req.target, res.statusCode ?? 0, body);
          fail(refusesProtocol(res.statusCode ?? 0, body) ? markProtocolRefusal(err) : err);
        },
        (err: unknown) => fail(networkFailure(err, api)),
      );
    });
    ws.on('error', (err) => {
      if (settled) return;
      if (err.message === 'Opening handshake has timed out') return fail(connectTimeout(api, api.connectTimeoutMs, connected));
      if (/subprotocol/i.test(err.message)) {
        return fail(
          markProtocolRefusal(new BridgeError(
            'unsupported',
            `the Kubernetes API server at ${api.server} speaks none of ${protocols.join(', ')} for exec over WebSocket (${err.message})`,
            { cause: err },
          )),
        );
      }
      fail(networkFailure(err, api));
    });
    ws.on('close', () => {
      fail(new BridgeError('exec-failed', `the Kubernetes API server at ${api.server} closed the exec connection before it opened`));
    });
    ws.on('open', () => {
      const version = protocolVersion(ws.protocol);
      if (version === null) {
        return fail(markProtocolRefusal(new BridgeError('unsupported', `the Kubernetes API server at ${api.server} chose exec protocol "${ws.protocol}"`)));
      }
      settled = true;
      // The transport installs its own listeners; ours must not outlive the handshake.
      ws.removeAllListeners();
      resolve(new WebSocketTransport(ws, version));
    });
  });
}


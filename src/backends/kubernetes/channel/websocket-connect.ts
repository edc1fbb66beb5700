/**
 * Opens the exec WebSocket: offers the given subprotocols and hands the open socket over as a
 * channel transport, or rejects with a BridgeError for a refused upgrade.
 */
import { BridgeError } from '../../../errors.ts';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { execPath, execQuery, refusedExec, type ExecRequest } from './exec-request.ts';
import { markProtocolRefusal, upgradeWebSocket } from './upgrade.ts';
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
  return upgradeWebSocket(
    api,
    headers,
    {
      path: execPath(req.target),
      query: execQuery(req),
      protocols,
      what: 'exec',
      refused: (httpStatus, body) => refusedExec(api, req.target, httpStatus, body),
      closedEarly: 'exec-failed',
      maxPayload: MAX_FRAME_BYTES,
    },
    (ws, protocol) => {
      const version = protocolVersion(protocol);
      if (version === null) throw markProtocolRefusal(new BridgeError('unsupported', `the Kubernetes API server at ${api.server} chose exec protocol "${protocol}"`));
      return new WebSocketTransport(ws, version);
    },
  );
}

/**
 * Opens an exec over SPDY/3.1 as client-go does (transport/spdy, tools/remotecommand): POST with
 * `Upgrade: SPDY/3.1` and one `X-Stream-Protocol-Version` header per protocol offered, newest
 * first; the server names its choice in the same header of its 101. Then one stream per channel,
 * each waiting for its SYN_REPLY before the next: error, stdin, stdout, stderr (not with a TTY),
 * resize (only with a TTY). The server starts the command once it has them all.
 */
import { BridgeError } from '../../../errors.ts';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { execPath, execQuery, refusedExec, type ExecRequest } from './exec-request.ts';
import { SpdyClientConnection, type SpdyStream } from './spdy/connection.ts';
import { SpdyTransport, StreamType, type SpdyExecStreams } from './spdy-transport.ts';
import { upgradeSpdy } from './upgrade.ts';
import { PROTOCOL_V4, PROTOCOL_V5 } from './websocket-frames.ts';

/**
 * What we offer over SPDY, newest first. kubectl also offers v3, v2 and channel.k8s.io; we stop
 * at v4 as over WebSocket: before v4 the error stream carries only a failure's text, so a
 * non-zero exit code, and a connection lost before the end, would both look like success.
 * Over SPDY, v5 means exactly v4 (the CLOSE signal is WebSocket's).
 */
export const SPDY_EXEC_PROTOCOLS: readonly string[] = [PROTOCOL_V5, PROTOCOL_V4];

/** client-go's createStreamResponseTimeout. */
const STREAM_REPLY_TIMEOUT_MS = 30_000;

export async function connectSpdy(
  api: KubeApiClient,
  headers: RequestHeaders,
  req: ExecRequest,
  protocols: readonly string[] = SPDY_EXEC_PROTOCOLS,
): Promise<SpdyTransport> {
  const { socket, head, protocol } = await upgradeSpdy(api, headers, {
    path: execPath(req.target),
    query: execQuery(req),
    protocols,
    what: 'exec',
    refused: (httpStatus, body) => refusedExec(api, req.target, httpStatus, body),
  });
  const conn = new SpdyClientConnection(socket, head);
  try {
    const open = (type: string) => conn.openStream(type, [['streamtype', [type]]], Math.max(STREAM_REPLY_TIMEOUT_MS, api.connectTimeoutMs));
    const error = await open(StreamType.error);
    const stdin = await open(StreamType.stdin);
    const stdout = await open(StreamType.stdout);
    const stderr: SpdyStream | null = req.tty ? null : await open(StreamType.stderr);
    const resize: SpdyStream | null = req.tty ? await open(StreamType.resize) : null;
    const streams: SpdyExecStreams = { error, stdin, stdout, stderr, resize };
    return new SpdyTransport(conn, streams, protocol);
  } catch (err) {
    conn.terminate();
    throw new BridgeError('exec-failed', `the Kubernetes API server at ${api.server} upgraded the exec to SPDY but did not take its streams: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
      detail: { ...req.target },
    });
  }
}

/**
 * Opens an exec over SPDY/3.1 as client-go does (transport/spdy, tools/remotecommand): POST with
 * `Upgrade: SPDY/3.1` and one `X-Stream-Protocol-Version` header per protocol offered, newest
 * first; the server names its choice in the same header of its 101. Then one stream per channel,
 * each waiting for its SYN_REPLY before the next: error, stdin, stdout, stderr (not with a TTY),
 * resize (only with a TTY). The server starts the command once it has them all.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { BridgeError } from '../../../errors.ts';
import { connectTimeout, networkFailure } from '../api/api-errors.ts';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import { execPath, execQuery, markProtocolRefusal, readBody, refusedUpgrade, refusesProtocol, type ExecRequest } from './exec-request.ts';
import { SpdyClientConnection, type SpdyStream } from './spdy/connection.ts';
import { SpdyTransport, StreamType, type SpdyExecStreams } from './spdy-transport.ts';
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
  const opts = await api.connectionOptions(headers);
  const url = api.url(execPath(req.target), execQuery(req));
  const request = url.protocol === 'http:' ? http.request : https.request;

  const upgraded = await new Promise<{ socket: Duplex; head: Buffer; protocol: string }>((resolve, reject) => {
    let connected = false;
    let settled = false;
    const fail = (err: BridgeError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      r.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(connectTimeout(api, api.connectTimeoutMs, connected)), api.connectTimeoutMs);
    const r = request(url, {
      ...opts,
      method: 'POST',
      headers: {
        ...opts.headers,
        Connection: 'Upgrade',
        Upgrade: 'SPDY/3.1',
        'X-Stream-Protocol-Version': [...protocols],
        'Content-Length': '0',
      },
    });
    r.on('socket', (socket: Socket) => {
      if (!socket.connecting) connected = true;
      else socket.once('connect', () => (connected = true));
    });
    r.on('error', (err) => fail(networkFailure(err, api)));
    r.on('response', (res) => {
      const code = res.statusCode ?? 0;
      readBody(res).then(
        (body) => {
          const err = refusedUpgrade(api, req.target, code, body);
          fail(refusesProtocol(code, body) ? markProtocolRefusal(err) : err);
        },
        (err: unknown) => fail(networkFailure(err, api)),
      );
    });
    r.on('upgrade', (res, socket: Duplex, head: Buffer) => {
      if (settled) return void socket.destroy();
      const connection = String(res.headers.connection ?? '').toLowerCase();
      const upgrade = String(res.headers.upgrade ?? '').toLowerCase();
      const chosen = String(res.headers['x-stream-protocol-version'] ?? '');
      // client-go's SpdyRoundTripper.NewConnection checks both headers.
      if (!connection.includes('upgrade') || !upgrade.includes('spdy/3.1')) {
        socket.destroy();
        return fail(markProtocolRefusal(new BridgeError('unsupported', `the Kubernetes API server at ${api.server} answered the SPDY exec upgrade with "Upgrade: ${upgrade}"`)));
      }
      if (!protocols.includes(chosen)) {
        socket.destroy();
        return fail(
          markProtocolRefusal(
            new BridgeError('unsupported', `the Kubernetes API server at ${api.server} chose exec protocol "${chosen}" over SPDY, which podbridge does not speak`),
          ),
        );
      }
      settled = true;
      clearTimeout(timer);
      resolve({ socket, head, protocol: chosen });
    });
    r.end();
  });

  const { socket, head, protocol } = upgraded;
  (socket as Socket).setNoDelay?.(true);
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

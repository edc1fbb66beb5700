/**
 * Opens the exec WebSocket: builds the URL, offers v5 then v4, and turns a refused upgrade into a
 * BridgeError that quotes the API server's Status (RBAC reason, missing pod, bad container).
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { BridgeError } from '../../errors.ts';
import { connectTimeout, forbidden, networkFailure, unauthorized } from './api-errors.ts';
import type { KubeApiClient, RequestHeaders } from './client.ts';
import { execFailure } from './exec-errors.ts';
import { EXEC_SUBPROTOCOLS, oneLine, parseStatus, protocolVersion, type ProtocolVersion } from './protocol.ts';
import type { ExecTarget } from './resolve.ts';

export interface ExecRequest {
  target: ExecTarget;
  argv: readonly string[];
  tty: boolean;
}

export interface OpenedExec {
  ws: WebSocket;
  version: ProtocolVersion;
}

// Frames from the API server are at most a few tens of KiB; this only stops a runaway peer.
const MAX_FRAME_BYTES = 16 * 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 64 * 1024;

export function execPath(target: ExecTarget): string {
  return `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/exec`;
}

export function execQuery(req: ExecRequest): URLSearchParams {
  const query = new URLSearchParams();
  for (const arg of req.argv) query.append('command', arg);
  query.set('container', req.target.container);
  query.set('stdin', 'true');
  query.set('stdout', 'true');
  // With a TTY the server refuses a separate stderr: the terminal carries both.
  query.set('stderr', req.tty ? 'false' : 'true');
  query.set('tty', req.tty ? 'true' : 'false');
  return query;
}

/** Resolves with what `attach` builds from the open socket. `attach` runs synchronously inside
 *  the 'open' event, before any frame can arrive, so no frame is ever emitted to nobody. */
export async function connectExec<T>(
  api: KubeApiClient,
  headers: RequestHeaders,
  req: ExecRequest,
  attach: (opened: OpenedExec) => T,
): Promise<T> {
  const conn = await api.connectionOptions(headers);
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

  return new Promise<T>((resolve, reject) => {
    const ws = new WebSocket(url, [...EXEC_SUBPROTOCOLS], options);
    let settled = false;
    const fail = (err: BridgeError) => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(err);
    };

    ws.on('unexpected-response', (_request, res) => {
      readBody(res).then(
        (body) => fail(refusedUpgrade(api, req.target, res.statusCode ?? 0, body)),
        (err: unknown) => fail(networkFailure(err, api)),
      );
    });
    ws.on('error', (err) => {
      if (settled) return;
      if (err.message === 'Opening handshake has timed out') return fail(connectTimeout(api, api.connectTimeoutMs, connected));
      if (/subprotocol/i.test(err.message)) {
        return fail(
          new BridgeError(
            'unsupported',
            `the Kubernetes API server at ${api.server} speaks neither v5.channel.k8s.io nor v4.channel.k8s.io for exec (${err.message})`,
            { cause: err },
          ),
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
        return fail(new BridgeError('unsupported', `the Kubernetes API server at ${api.server} chose exec protocol "${ws.protocol}"`));
      }
      settled = true;
      // The stream installs its own listeners; ours must not outlive the handshake.
      ws.removeAllListeners();
      try {
        resolve(attach({ ws, version }));
      } catch (err) {
        ws.terminate();
        reject(err);
      }
    });
  });
}

function readBody(res: IncomingMessage): Promise<Buffer> {
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

/** The API server answered the upgrade with an HTTP error; its body is a Status. */
export function refusedUpgrade(api: KubeApiClient, target: ExecTarget, httpStatus: number, body: Buffer): BridgeError {
  const status = parseStatus(body);
  // The API server answers with a Status; a kubelet or proxy behind it may answer in plain text.
  const plain = body.length > 0 && status === null ? oneLine(body.toString('utf8'), 200) : null;
  const serverWords = status?.message !== undefined && status.message !== '' ? oneLine(status.message) : plain;
  const where = `pod "${target.pod}" in namespace "${target.namespace}"`;
  const detail = { ...target, httpStatus, status: status ?? plain };
  switch (httpStatus) {
    case 401:
      return unauthorized(api, status);
    case 403:
      if (serverWords === null) {
        // A bare 403 is also how the kubelet's WebSocket handshake refuses unknown subprotocols.
        return new BridgeError(
          'forbidden',
          `exec into ${where} was refused with a bare 403: either RBAC denies it, or the server speaks neither v5.channel.k8s.io nor v4.channel.k8s.io`,
          { detail },
        );
      }
      return forbidden(status, `exec into ${where} is forbidden`);
    case 404:
      return new BridgeError('pod-not-found', `${where} not found when starting the command (it may have just been deleted)`, {
        detail,
      });
  }
  if (httpStatus >= 200 && httpStatus < 400) {
    return new BridgeError(
      'exec-failed',
      `the Kubernetes API server at ${api.server} answered ${httpStatus} instead of upgrading to a WebSocket; a proxy in between may not pass WebSockets`,
      { detail },
    );
  }
  const words = serverWords ?? `HTTP ${httpStatus}`;
  if (/is not valid for pod/i.test(words)) {
    return new BridgeError('container-not-found', `container "${target.container}" not found in ${where}: ${words}`, { detail });
  }
  // What the kubelet behind a proxy says in plain text: no /bin/sh, container gone, anything else.
  return execFailure(target, words, detail);
}

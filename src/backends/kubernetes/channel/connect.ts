/**
 * Opens an exec's channel transport: the one place that decides which protocol an exec speaks.
 * The order is kubectl's (client-go's FallbackExecutor, 1.30+): WebSocket with v5 only, which
 * can half-close stdin; when that upgrade is refused for its protocol, SPDY/3.1 (v5, v4), where
 * stdin is a stream of its own and EOF is its FIN; and only when SPDY is refused too (a proxy
 * that strips it), WebSocket v4, which cannot pass stdin EOF at all. A refusal of the exec
 * itself (RBAC, no such pod or container) ends the search at once with that error.
 */
import type { Logger } from '../../../log.ts';
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import type { ExecRequest } from './exec-request.ts';
import { connectSpdy } from './spdy-connect.ts';
import type { ChannelTransport } from '../../exec/transport.ts';
import { isProtocolRefusal } from './upgrade.ts';
import { connectWebSocket } from './websocket-connect.ts';
import { PROTOCOL_V4, PROTOCOL_V5 } from './websocket-frames.ts';

export type { ExecRequest } from './exec-request.ts';

export async function openExecChannel(api: KubeApiClient, headers: RequestHeaders, req: ExecRequest, log?: Logger): Promise<ChannelTransport> {
  try {
    return await connectWebSocket(api, headers, req, [PROTOCOL_V5]);
  } catch (err) {
    if (!isProtocolRefusal(err)) throw err;
    log?.debug({ err: (err as Error).message }, 'exec over WebSocket v5 refused; trying SPDY/3.1');
  }
  try {
    return await connectSpdy(api, headers, req);
  } catch (err) {
    if (!isProtocolRefusal(err)) throw err;
    log?.debug({ err: (err as Error).message }, 'exec over SPDY/3.1 refused; trying WebSocket v4 (stdin EOF cannot be passed on)');
  }
  const transport = await connectWebSocket(api, headers, req, [PROTOCOL_V4]);
  transport.note('WebSocket v5 and SPDY refused');
  return transport;
}

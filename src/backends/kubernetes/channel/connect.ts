/**
 * Opens an exec's channel transport: the one place that decides which protocol an exec speaks.
 */
import type { KubeApiClient, RequestHeaders } from '../api/client.ts';
import type { ExecRequest } from './exec-request.ts';
import type { ChannelTransport } from './transport.ts';
import { connectWebSocket } from './websocket-connect.ts';

export type { ExecRequest } from './exec-request.ts';

export async function openExecChannel(api: KubeApiClient, headers: RequestHeaders, req: ExecRequest): Promise<ChannelTransport> {
  return connectWebSocket(api, headers, req);
}

/**
 * The Kubernetes remotecommand channel protocol over WebSocket, as pure functions: subprotocol
 * names, framing, resize and close messages. (The Status that ends every stream is exec/kube-status.ts.)
 *
 * Reference: k8s.io/client-go/tools/remotecommand/websocket.go (the Go client) and
 * k8s.io/apimachinery/pkg/util/remotecommand (the constants).
 */

/** Subprotocols we offer, newest first; the server picks the first it speaks.
 *  Nothing older than v4: v1-v3 report failures as plain text with no exit code, so a
 *  non-zero exit would be indistinguishable from an API error, and every API server since
 *  Kubernetes 1.4 speaks v4 anyway. v5 adds only the CLOSE message (stdin EOF). */
export const PROTOCOL_V5 = 'v5.channel.k8s.io';
export const PROTOCOL_V4 = 'v4.channel.k8s.io';
export const EXEC_SUBPROTOCOLS: readonly string[] = [PROTOCOL_V5, PROTOCOL_V4];

export type ProtocolVersion = 'v5' | 'v4';

export function protocolVersion(negotiated: string): ProtocolVersion | null {
  if (negotiated === PROTOCOL_V5) return 'v5';
  if (negotiated === PROTOCOL_V4) return 'v4';
  return null;
}

export const Channel = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  /** The Status that ends the stream (exit code or failure). */
  status: 3,
  resize: 4,
  /** v5 only: `[255, ch]` half-closes channel `ch` (stdin EOF). */
  close: 255,
} as const;

/** One outgoing binary message: the channel byte, then the payload. */
export function encodeFrame(channel: number, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(payload.length + 1);
  frame[0] = channel;
  frame.set(payload, 1);
  return frame;
}

export interface Frame {
  channel: number;
  /** A view into the received message (no copy). */
  payload: Buffer;
}

/** null for a message too short to carry a channel byte. */
export function decodeFrame(message: Buffer): Frame | null {
  if (message.length < 1) return null;
  return { channel: message[0] as number, payload: message.subarray(1) };
}

/** The resize message. The server matches keys case-insensitively; these are the Go field names. */
export function encodeResize(cols: number, rows: number): Buffer {
  return encodeFrame(Channel.resize, Buffer.from(JSON.stringify({ Width: cols, Height: rows })));
}

/** v5's CLOSE message for one channel (stdin EOF when channel is 0). */
export function encodeClose(channel: number): Buffer {
  return Buffer.from([Channel.close, channel]);
}

/**
 * The Kubernetes remotecommand channel protocol (exec over WebSocket), as pure functions:
 * framing, resize and close messages, and the Status that ends every stream.
 *
 * Reference: k8s.io/client-go/tools/remotecommand/websocket.go (the Go client) and
 * k8s.io/apimachinery/pkg/util/remotecommand (the constants).
 */
import { z } from 'zod';

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

/** The subset of metav1.Status we read, from exec's channel 3 and from refused HTTP requests. */
const StatusSchema = z.object({
  kind: z.string().optional(),
  status: z.string().optional(),
  message: z.string().optional(),
  reason: z.string().optional(),
  code: z.number().optional(),
  details: z
    .object({
      name: z.string().optional(),
      kind: z.string().optional(),
      causes: z
        .array(z.object({ reason: z.string().optional(), message: z.string().optional(), field: z.string().optional() }))
        .optional(),
    })
    .optional(),
});
export type KubeStatus = z.infer<typeof StatusSchema>;

/** Parses a Status from raw bytes or an already-decoded JSON value; null when it is not one. */
export function parseStatus(raw: Buffer | string | unknown): KubeStatus | null {
  let value: unknown = raw;
  if (Buffer.isBuffer(raw) || typeof raw === 'string') {
    try {
      value = JSON.parse(raw.toString());
    } catch {
      return null;
    }
  }
  const parsed = StatusSchema.safeParse(value);
  if (!parsed.success || parsed.data.status === undefined) return null;
  return parsed.data;
}

/** What a Status on channel 3 means for the process. */
export type StatusOutcome =
  | { kind: 'exit'; code: number }
  /** The command never ran or the stream broke: `message` is the server's own words. */
  | { kind: 'failure'; reason: string; message: string };

export function interpretStatus(status: KubeStatus): StatusOutcome {
  if (status.status === 'Success') return { kind: 'exit', code: 0 };
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const code = cause?.message === undefined ? NaN : Number(cause.message);
    if (Number.isInteger(code) && code >= 0) return { kind: 'exit', code };
  }
  return {
    kind: 'failure',
    reason: status.reason ?? 'Unknown',
    message: oneLine(status.message ?? `exec failed (${status.reason ?? 'no reason given'})`),
  };
}

/** Runtimes report a missing executable for the process they start (our `/bin/sh` wrapper) in
 *  these words: runc/crun `exec: "/bin/sh": stat /bin/sh: no such file or directory` and
 *  `executable file not found in $PATH`. Anything the shell itself cannot find is an exit code
 *  (127), never a Status failure, so these words can only be about the wrapper. */
export function isMissingShell(message: string): boolean {
  return /executable file not found|no such file or directory/i.test(message);
}

/** Status messages may span lines (wrapped runtime errors); the SSH user gets exactly one. */
export function oneLine(text: string, max = 400): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * metav1.Status: the JSON the API server answers refused requests with, and the one that ends
 * every exec stream (channel 3 over WebSocket, the error stream over SPDY). Pure functions.
 * It lives with the shared exec code because the Docker backend speaks it too: its exec transport
 * hands the Engine's exit code on as the Status Kubernetes would have sent, so ExecProcess reads
 * one vocabulary (docker/exec-transport.ts).
 */
import { z } from 'zod';

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

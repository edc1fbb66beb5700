/**
 * The one error type a user can cause or meet. Its `message` is the single line the SSH client
 * prints on stderr: it names the thing (namespace, pod, container, server, rule) and says what to
 * do. Anything longer belongs in `detail`, which goes to the log only.
 */
export type ErrorCode =
  | 'invalid-target'
  | 'namespace-not-found'
  | 'pod-not-found'
  | 'workload-not-found'
  | 'no-running-pod'
  | 'pod-not-running'
  | 'container-not-found'
  | 'container-not-running'
  | 'forbidden'
  | 'unauthorized'
  | 'api-unreachable'
  | 'tls'
  | 'no-shell'
  | 'exec-failed'
  | 'stream-lost'
  | 'session-ended'
  | 'denied'
  | 'limit'
  | 'unsupported'
  | 'recording-failed'
  /** A forwarded port: nothing listens there, or the pod refused the connection. */
  | 'connect-failed'
  | 'internal';

export class BridgeError extends Error {
  override readonly name = 'BridgeError';
  readonly code: ErrorCode;
  /** Structured context for the log line; never shown to the SSH user. */
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; detail?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = options.detail ?? {};
  }
}

export function isBridgeError(err: unknown): err is BridgeError {
  return err instanceof BridgeError;
}

/** Wraps anything thrown into a BridgeError without losing the original for the log. */
export function toBridgeError(err: unknown, fallback = 'internal error in podbridge; see the bridge log'): BridgeError {
  if (err instanceof BridgeError) return err;
  return new BridgeError('internal', fallback, { cause: err });
}

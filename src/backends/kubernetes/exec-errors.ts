/**
 * The user-facing words for an exec that failed after the target was resolved. Shared by the
 * upgrade (a kubelet behind a v4 proxy refuses in plain HTTP) and the stream (a v5 API server
 * reports the same failure as a Status on channel 3), so both say the same thing.
 */
import { BridgeError } from '../../errors.ts';
import type { ExecWords } from '../exec/exec-process.ts';
import { isMissingShell, oneLine } from '../exec/kube-status.ts';
import type { ExecTarget } from './api/target-resolution.ts';

export function where(t: ExecTarget): string {
  return `container "${t.container}" in pod "${t.pod}" in namespace "${t.namespace}"`;
}

/** The runtime could not start our command; `serverWords` is what it said. */
export function execFailure(target: ExecTarget, serverWords: string, detail: Record<string, unknown>): BridgeError {
  if (isMissingShell(serverWords)) {
    return new BridgeError(
      'no-shell',
      `${where(target)} has no /bin/sh; podbridge needs a shell in the image (or add one with kubectl debug)`,
      { detail: { ...target, ...detail, message: serverWords } },
    );
  }
  // The container stopped between our check and the exec (kubelet: `container not found ("c")`).
  if (/container not found|is not running|completed pod/i.test(serverWords)) {
    return new BridgeError('container-not-running', `${where(target)} is not running: ${oneLine(serverWords)}`, {
      detail: { ...target, ...detail, message: serverWords },
    });
  }
  return new BridgeError('exec-failed', `command in ${where(target)} failed: ${oneLine(serverWords)}`, {
    detail: { ...target, ...detail, message: serverWords },
  });
}

/** The stream ended without a Status: we do not know how the process ended, so never exit 0. */
export function streamLost(target: ExecTarget, why: string | null, detail: Record<string, unknown>): BridgeError {
  return new BridgeError(
    'stream-lost',
    `connection to pod "${target.pod}" in namespace "${target.namespace}" lost before it reported an exit status${why !== null ? ` (${oneLine(why, 120)})` : ''}`,
    { detail: { ...target, ...detail } },
  );
}

/** terminate() closed the stream before the process reported an exit status. */
export function endedByBridge(target: ExecTarget, reason: string, detail: Record<string, unknown>): BridgeError {
  return new BridgeError('stream-lost', `session in pod "${target.pod}" in namespace "${target.namespace}" was ended by podbridge: ${reason}`, {
    detail: { ...target, ...detail },
  });
}

/** An exec's failures in a pod, as ExecProcess reports them. */
export function kubernetesExecWords(target: ExecTarget): ExecWords {
  return {
    failed: (words, detail) => execFailure(target, words, detail),
    lost: (why, detail) => streamLost(target, why, detail),
    endedByBridge: (reason, detail) => endedByBridge(target, reason, detail),
  };
}

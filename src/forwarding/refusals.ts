/**
 * What the bridge does not forward, each refused with a reason and a log line: remote
 * forwarding (-R) would need a listener inside the pod; agent (-A) and X11 forwarding would
 * hand the pod a way back into the user's machine; Unix-socket forwarding has no counterpart in
 * pods/portforward. The texts say what works instead.
 */
import type { Logger } from '../log.ts';

export const REFUSED = {
  remoteForward:
    'remote forwarding (ssh -R) is not offered: it would need a listener inside the pod; run the service in the pod and use ssh -L instead',
  streamlocal:
    'Unix-socket forwarding (direct-streamlocal) is not offered: Kubernetes forwards TCP ports only; forward a TCP port with ssh -L PORT:localhost:PORT',
  agent: 'agent forwarding (ssh -A) is not offered: the pod would get the use of your keys; use ssh -J through the bridge to reach an sshd in the pod instead',
  x11: 'X11 forwarding (ssh -X/-Y) is not offered: forward the application\'s port with ssh -L instead',
} as const;

/** A global request: tcpip-forward (-R) and its streamlocal variant are refused, the rest too. */
export function refuseGlobalRequest(log: Logger, name: string, reject: (() => void) | undefined): void {
  if (name === 'tcpip-forward' || name === 'streamlocal-forward@openssh.com') log.info({ request: name }, REFUSED.remoteForward);
  else if (name !== 'cancel-tcpip-forward' && name !== 'cancel-streamlocal-forward@openssh.com') log.debug({ request: name }, 'global request refused');
  reject?.();
}

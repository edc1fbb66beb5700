/**
 * Which direct-tcpip destinations mean "the pod itself". The runtime dials loopback inside the
 * pod's network namespace, so only loopback names make sense; anything else would turn the
 * bridge into an open relay to the cluster network or the internet, and is refused by name.
 */

/** As ssh sends them: `-L 8080:localhost:80`, `-W 127.0.0.1:5432`, `-L 8080:[::1]:80` (sent as ::1). */
const POD_LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

export function meansThePod(host: string): boolean {
  return POD_LOOPBACK.has(host.toLowerCase());
}

/** The one-line reason a destination is refused; names the rule and what works instead. */
export function destinationRefusal(host: string, port: number): string {
  return `forwarding reaches only the pod itself: use localhost, 127.0.0.1 or ::1 as the destination (ssh -L ${port}:localhost:${port}), not ${printable(host)}`;
}

/** Client-supplied text made safe for a message: printable ASCII, capped. */
export function printable(s: string, max = 80): string {
  const clipped = s.length > max ? `${s.slice(0, max)}...` : s;
  return JSON.stringify(clipped).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

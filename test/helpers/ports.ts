/**
 * Loopback ports for tests and benchmarks (bench/ imports this too): a port nothing listens on,
 * and waiting for one to start listening (sshd, `ssh -L`, kubectl port-forward coming up).
 */
import net from 'node:net';

/** A port nothing listens on right now: bound once, then released (for servers that cannot
 *  report the port they got from a bind to 0, and for "nothing listens there" tests). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Whether `port` on 127.0.0.1 accepts a connection within `timeoutMs` (polled every 50 ms). */
export async function waitForPort(port: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** As waitForPort, failing with the port's name when nothing listened in time. */
export async function waitForListener(port: number, timeoutMs = 30_000): Promise<void> {
  if (!(await waitForPort(port, timeoutMs))) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

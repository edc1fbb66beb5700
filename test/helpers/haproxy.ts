/**
 * A real HAProxy (Debian's haproxy) on loopback, with a config of the test's own. It runs under a
 * shell that waits on a pipe from this process: when the test process ends in any way, the pipe
 * closes and HAProxy is stopped, so no balancer outlives its test.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface HaproxyProcess {
  stop(): Promise<void>;
}

export const HAPROXY = ['/usr/sbin/haproxy', '/usr/local/sbin/haproxy'].find((p) => fs.existsSync(p)) ?? 'haproxy';

/** HAProxy's own binds cannot report a port 0: tests pick one first. */
export { freePort } from './ports.ts';

export async function startHaproxy(config: string, ports: number[]): Promise<HaproxyProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-haproxy-'));
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, config);
  // -db: foreground, no daemon. `cat` returns when our end of stdin closes (we exit or stop()).
  const child: ChildProcessWithoutNullStreams = spawn('sh', ['-c', `"$0" -db -f "$1" & pid=$!; cat >/dev/null; kill $pid; wait $pid`, HAPROXY, file], { stdio: 'pipe' });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 20_000;
  for (const port of ports) {
    for (;;) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect({ port, host: '127.0.0.1' }, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (up) break;
      if (child.exitCode !== null || Date.now() > deadline) {
        child.stdin.end();
        throw new Error(`haproxy did not listen on ${port}: ${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    stop: async () => {
      child.stdin.end();
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The diagnostics port (--diag-listen): /metrics for Prometheus, /healthz (the process answers)
 * and /readyz (it should get new connections). Plain HTTP on its own address so it can stay off
 * the SSH port's load balancer; it serves nothing that needs a credential.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.ts';
import type { Metrics } from './metrics.ts';

/** One readiness condition: null when met, else why not (one short line). */
export type ReadinessCheck = () => Promise<string | null> | string | null;

export interface DiagServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** A probe slower than this counts as failed: kubelet's default probe timeout is 1 s. */
const CHECK_TIMEOUT_MS = 900;

export async function startDiagServer(opts: {
  listen: { host: string; port: number };
  metrics: Metrics;
  checks: Record<string, ReadinessCheck>;
  log: Logger;
}): Promise<DiagServer> {
  const { metrics, checks, log } = opts;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'only GET\n');
    if (path === '/healthz') return send(res, 200, 'ok\n');
    if (path === '/readyz') {
      void readiness(checks).then((problems) => {
        if (problems.length === 0) return send(res, 200, 'ok\n');
        log.debug({ problems }, 'readiness check failed');
        send(res, 503, problems.map((p) => `not ready: ${p}\n`).join(''));
      });
      return;
    }
    if (path === '/metrics') {
      void metrics.text().then(
        (text) => send(res, 200, text, metrics.registry.contentType),
        (err: Error) => send(res, 500, `metrics failed: ${err.message}\n`),
      );
      return;
    }
    send(res, 404, 'not found: try /metrics, /healthz or /readyz\n');
  });
  // A probe or scraper must not hold the port open across a shutdown.
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listen.port, opts.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err: Error) => log.error({ err: err.message }, 'diagnostics listener error'));
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function readiness(checks: Record<string, ReadinessCheck>): Promise<string[]> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const problem = await Promise.race([
          Promise.resolve(check()),
          new Promise<string>((r) => (timer = setTimeout(() => r(`no answer within ${CHECK_TIMEOUT_MS} ms`), CHECK_TIMEOUT_MS))),
        ]);
        return problem === null ? null : `${name}: ${problem}`;
      } catch (err) {
        return `${name}: ${(err as Error).message}`;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return results.filter((r): r is string => r !== null);
}

function send(res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

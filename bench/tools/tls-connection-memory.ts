/**
 * What one idle client connection costs a Node process, TLS against plain TCP: the floor under
 * podbridge's per-session memory, which holds one TLS connection to the API server per session
 * (one exec WebSocket each). The server runs in a child process; this process opens N connections
 * (ECDSA P-256 certificate, as the fixture uses), forces a GC and reports RSS, V8 heap and the rest.
 *
 *   npx tsc -p tsconfig.test.json && node --expose-gc build/bench/tools/tls-connection-memory.js [tls|tls-shared|tcp] [N]
 */
import { execFileSync, fork } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';

// tls: a SecureContext per connection (what tls.connect does when given `ca` and no
// `secureContext`); tls-shared: one SecureContext for all of them.
const mode = process.argv[2] === 'tcp' ? 'tcp' : process.argv[2] === 'tls-shared' ? 'tls-shared' : 'tls';
const n = Math.min(Math.max(Number(process.argv[3] ?? 2000) || 2000, 1), 20_000);
const gc = (globalThis as { gc?: () => void }).gc;

async function server(dir: string): Promise<void> {
  const onConn = (s: net.Socket) => {
    s.on('error', () => undefined);
    s.on('data', () => undefined);
  };
  const srv = mode === 'tcp' ? net.createServer(onConn) : tls.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }, onConn);
  srv.listen(0, '127.0.0.1', () => process.send?.((srv.address() as net.AddressInfo).port));
}

async function client(): Promise<void> {
  if (!gc) throw new Error('run with node --expose-gc');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-memory-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const child = fork(fileURLToPath(import.meta.url), [mode, String(n), 'server', dir], { execArgv: [] });
  try {
    const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
    const ca = fs.readFileSync(path.join(dir, 'cert.pem'));
    const shared = mode === 'tls-shared' ? tls.createSecureContext({ ca }) : undefined;
    await new Promise((r) => setTimeout(r, 500));
    gc();
    gc();
    const m0 = process.memoryUsage();
    const held: net.Socket[] = [];
    for (let i = 0; i < n; i++) {
      held.push(
        await new Promise<net.Socket>((resolve, reject) => {
          const s: net.Socket = mode === 'tcp' ? net.connect(port, '127.0.0.1', () => resolve(s)) : tls.connect({ port, host: '127.0.0.1', ...(shared ? { secureContext: shared } : { ca: Buffer.from(ca) }) }, () => resolve(s));
          s.once('error', reject);
          s.on('data', () => undefined);
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 1000));
    gc();
    gc();
    const m1 = process.memoryUsage();
    const per = (a: number, b: number) => ((a - b) / n / 1024).toFixed(1);
    process.stdout.write(
      `${mode}: ${n} idle client connections: ${per(m1.rss, m0.rss)} KiB of RSS each ` +
        `(V8 heap used ${per(m1.heapUsed, m0.heapUsed)}, heap total ${per(m1.heapTotal, m0.heapTotal)}, external ${per(m1.external, m0.external)}, ` +
        `native outside the heap ${per(m1.rss - m1.heapTotal - m1.external, m0.rss - m0.heapTotal - m0.external)})\n`,
    );
    for (const s of held) s.destroy();
  } finally {
    child.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[4] === 'server') void server(process.argv[5] ?? '');
else await client();

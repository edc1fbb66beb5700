/**
 * The direct path: a plain WebSocket client of the exec channel protocol (v5, v4), no SSH. It
 * gets TLS and credentials from the kubeconfig the same way the bridge does and runs the same
 * argv the bridge would run (command.ts's wrapper), so what differs from the podbridge path is
 * exactly what the bridge adds: the SSH layer, the bridge process and its own exec client.
 */
import WebSocket from 'ws';
import { buildExecCommand } from '../../src/backends/kubernetes/exec/command.ts';
import { Channel } from '../../src/backends/kubernetes/channel/websocket-frames.ts';
import { KubeApiClient } from '../../src/backends/kubernetes/api/client.ts';
import { loadKubeconfig } from '../../src/backends/kubernetes/api/kubeconfig.ts';
import type { ClientRequestArgs } from 'node:http';
import type { PodTarget } from './cluster.ts';

const { stdin: STDIN, stdout: STDOUT, stderr: STDERR, status: STATUS, resize: RESIZE, close: CLOSE } = Channel;

export interface DirectApi {
  api: KubeApiClient;
  target: PodTarget;
}

export function directApi(kubeconfig: string, target: PodTarget): DirectApi {
  const loaded = loadKubeconfig({ kubeconfig });
  return { api: new KubeApiClient(loaded.kc, { server: loaded.server, contextName: loaded.contextName }), target };
}

export interface DirectSpec {
  /** null: a login shell, as the bridge starts it. */
  command: string | null;
  tty: { cols: number; rows: number } | null;
}

export interface DirectExit {
  code: number | null;
  status: string;
}

export class DirectExec {
  readonly done: Promise<DirectExit>;
  private statusText = '';
  // Output that arrives before a consumer is attached is kept, never dropped.
  private readonly handlers: Array<((b: Buffer) => void) | null> = [null, null, null];
  private readonly pending: Buffer[][] = [[], [], []];

  set onStdout(cb: (b: Buffer) => void) {
    this.attach(STDOUT, cb);
  }

  set onStderr(cb: (b: Buffer) => void) {
    this.attach(STDERR, cb);
  }

  private attach(ch: number, cb: (b: Buffer) => void): void {
    this.handlers[ch] = cb;
    const queued = this.pending[ch] ?? [];
    this.pending[ch] = [];
    for (const b of queued) cb(b);
  }

  private constructor(readonly ws: WebSocket) {
    this.done = new Promise((resolve) => {
      ws.on('message', (data: Buffer) => {
        const ch = data[0];
        if (ch === STDOUT || ch === STDERR) {
          if (data.length <= 1) return;
          const h = this.handlers[ch];
          if (h) h(data.subarray(1));
          else this.pending[ch]?.push(Buffer.from(data.subarray(1)));
        } else if (ch === STATUS) this.statusText += data.subarray(1).toString();
      });
      ws.on('close', () => resolve(this.exit()));
      ws.on('error', () => undefined);
    });
  }

  /** Resolves once the upgrade succeeded (the server's readiness frame may still be on its way). */
  static async open(d: DirectApi, spec: DirectSpec, timeoutMs = 30_000): Promise<DirectExec> {
    const { argv } = buildExecCommand({ command: spec.command, tty: spec.tty ? { term: 'xterm', ...spec.tty } : null, env: {} }, { sessionTag: 'bench' });
    const q = new URLSearchParams();
    for (const a of argv) q.append('command', a);
    if (d.target.container !== null) q.set('container', d.target.container);
    q.set('stdin', 'true');
    q.set('stdout', 'true');
    q.set('stderr', spec.tty ? 'false' : 'true');
    q.set('tty', spec.tty ? 'true' : 'false');
    const url = d.api.url(`/api/v1/namespaces/${encodeURIComponent(d.target.namespace)}/pods/${encodeURIComponent(d.target.pod)}/exec`, q);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    const conn = await d.api.connectionOptions({});
    const ws = new WebSocket(url, ['v5.channel.k8s.io', 'v4.channel.k8s.io'], {
      ...(conn as ClientRequestArgs),
      perMessageDeflate: false,
      handshakeTimeout: timeoutMs,
    } as WebSocket.ClientOptions);
    const exec = new DirectExec(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`exec upgrade refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    if (spec.tty) exec.resize(spec.tty.cols, spec.tty.rows);
    return exec;
  }

  get v5(): boolean {
    return this.ws.protocol === 'v5.channel.k8s.io';
  }

  write(data: Buffer, cb?: (err?: Error) => void): void {
    const frame = Buffer.allocUnsafe(data.length + 1);
    frame[0] = STDIN;
    data.copy(frame, 1);
    this.ws.send(frame, { binary: true }, cb);
  }

  resize(cols: number, rows: number): void {
    const json = Buffer.from(JSON.stringify({ Width: cols, Height: rows }));
    const frame = Buffer.allocUnsafe(json.length + 1);
    frame[0] = RESIZE;
    json.copy(frame, 1);
    this.ws.send(frame, { binary: true });
  }

  closeStdin(): void {
    if (this.v5) this.ws.send(Buffer.from([CLOSE, STDIN]), { binary: true });
  }

  /**
   * Sends `total` zero bytes on stdin in 32 KiB frames (io.Copy's size, as kubectl sends), with at
   * most `maxInFlight` bytes handed to ws and not yet written to the socket.
   */
  async sendZeros(total: number, maxInFlight = 4 * 1024 * 1024): Promise<void> {
    const chunk = Buffer.alloc(32 * 1024);
    let sent = 0;
    let inFlight = 0;
    let wake: (() => void) | null = null;
    while (sent < total) {
      if (this.ws.readyState !== WebSocket.OPEN) throw new Error('exec stream closed while sending stdin');
      const n = Math.min(chunk.length, total - sent);
      inFlight += n;
      sent += n;
      this.write(n === chunk.length ? chunk : chunk.subarray(0, n), () => {
        inFlight -= n;
        const w = wake;
        wake = null;
        w?.();
      });
      if (inFlight >= maxInFlight) await new Promise<void>((r) => (wake = r));
    }
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
  }

  terminate(): void {
    this.ws.terminate();
  }

  private exit(): DirectExit {
    const text = this.statusText;
    try {
      const s = JSON.parse(text) as { status?: string; reason?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } };
      if (s.status === 'Success') return { code: 0, status: text };
      const c = s.details?.causes?.find((x) => x.reason === 'ExitCode');
      return { code: c?.message !== undefined ? Number(c.message) : null, status: text };
    } catch {
      return { code: null, status: text };
    }
  }
}

/**
 * The direct paths, no SSH: a plain WebSocket client of the exec channel protocol (v5, v4), and
 * the SPDY/3.1 exec (through the bridge's own SPDY channel transport: there is no other SPDY
 * client here). Both get TLS and credentials from the kubeconfig the same way the bridge does and
 * run the same argv the bridge would run (command.ts's wrapper), so what differs from the
 * podbridge path is exactly what the bridge adds: the SSH layer, the bridge process and its
 * exec process on top of the channel.
 */
import WebSocket from 'ws';
import { buildExecCommand } from '../../src/backends/exec/command.ts';
import { Channel } from '../../src/backends/kubernetes/channel/websocket-frames.ts';
import { KubeApiClient } from '../../src/backends/kubernetes/api/client.ts';
import { loadKubeconfig } from '../../src/backends/kubernetes/api/kubeconfig.ts';
import type { ClientRequestArgs } from 'node:http';
import type { PodTarget } from './cluster.ts';
import { connectSpdy } from '../../src/backends/kubernetes/channel/spdy-connect.ts';
import type { ChannelTransport } from '../../src/backends/exec/transport.ts';

const { stdin: STDIN, stdout: STDOUT, stderr: STDERR, status: STATUS, resize: RESIZE, close: CLOSE } = Channel;

export interface DirectApi {
  api: KubeApiClient;
  target: PodTarget;
}

/** `connectTimeoutMs`: as the WebSocket path's handshake timeout, so that many streams opened at
 *  once on a loaded machine fail on both paths alike or on neither. */
export function directApi(kubeconfig: string, target: PodTarget, connectTimeoutMs = 30_000): DirectApi {
  const loaded = loadKubeconfig({ kubeconfig });
  return { api: new KubeApiClient(loaded.kc, { server: loaded.server, contextName: loaded.contextName }, connectTimeoutMs), target };
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

  private constructor(private readonly wire: DirectWire) {
    this.done = new Promise((resolve) => {
      wire.listen(
        (ch, payload) => {
          if (ch === STDOUT || ch === STDERR) {
            if (payload.length === 0) return;
            const h = this.handlers[ch];
            if (h) h(payload);
            else this.pending[ch]?.push(Buffer.from(payload));
          } else if (ch === STATUS) this.statusText += payload.toString();
        },
        () => resolve(this.exit()),
      );
    });
  }

  /** The same exec over SPDY/3.1 (the fixture's SPDY speaks v4; stdin EOF is a FIN). */
  static async openSpdy(d: DirectApi, spec: DirectSpec): Promise<DirectExec> {
    const { argv } = buildExecCommand({ command: spec.command, tty: spec.tty ? { term: 'xterm', ...spec.tty } : null, env: {} }, { sessionTag: 'bench' });
    const target = { namespace: d.target.namespace, pod: d.target.pod, container: d.target.container ?? '' };
    const transport = await connectSpdy(d.api, {}, { target, argv, tty: spec.tty !== null });
    const exec = new DirectExec(spdyWire(transport));
    if (spec.tty) exec.resize(spec.tty.cols, spec.tty.rows);
    return exec;
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
    const exec = new DirectExec(webSocketWire(ws));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(new Error(`exec upgrade refused: HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
    if (spec.tty) exec.resize(spec.tty.cols, spec.tty.rows);
    return exec;
  }

  write(data: Buffer, cb?: (err?: Error) => void): void {
    this.wire.write(data, cb);
  }

  resize(cols: number, rows: number): void {
    this.wire.resize(cols, rows);
  }

  closeStdin(): void {
    this.wire.closeStdin();
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
      if (!this.wire.isOpen()) throw new Error('exec stream closed while sending stdin');
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
    this.wire.close();
  }

  terminate(): void {
    this.wire.terminate();
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

/** What a direct exec needs from its connection, whatever the protocol. */
interface DirectWire {
  listen(onData: (channel: number, payload: Buffer) => void, onClose: () => void): void;
  write(data: Buffer, cb?: (err?: Error) => void): void;
  resize(cols: number, rows: number): void;
  closeStdin(): void;
  isOpen(): boolean;
  close(): void;
  terminate(): void;
}

/** Raw channel frames over `ws`, written here by hand (not the bridge's client). */
function webSocketWire(ws: WebSocket): DirectWire {
  const send = (channel: number, data: Buffer, cb?: (err?: Error) => void) => {
    const frame = Buffer.allocUnsafe(data.length + 1);
    frame[0] = channel;
    data.copy(frame, 1);
    ws.send(frame, { binary: true }, cb);
  };
  return {
    listen: (onData, onClose) => {
      ws.on('message', (data: Buffer) => onData(data[0] ?? -1, data.subarray(1)));
      ws.on('close', onClose);
      ws.on('error', () => undefined);
    },
    write: (data, cb) => send(STDIN, data, cb),
    resize: (cols, rows) => send(RESIZE, Buffer.from(JSON.stringify({ Width: cols, Height: rows }))),
    closeStdin: () => {
      if (ws.protocol === 'v5.channel.k8s.io') ws.send(Buffer.from([CLOSE, STDIN]), { binary: true });
    },
    isOpen: () => ws.readyState === WebSocket.OPEN,
    close: () => {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    },
    terminate: () => ws.terminate(),
  };
}

function spdyWire(t: ChannelTransport): DirectWire {
  const channels = { stdout: STDOUT, stderr: STDERR, status: STATUS } as const;
  return {
    listen: (onData, onClose) =>
      t.attach({ data: (stream, payload) => onData(channels[stream], payload), heard: () => {}, error: () => {}, closed: () => onClose() }),
    write: (data, cb) => t.writeStdin(data, (err) => cb?.(err ?? undefined)),
    resize: (cols, rows) => t.writeResize(cols, rows, () => {}),
    closeStdin: () => t.endStdin(() => {}),
    isOpen: () => t.isOpen,
    close: () => t.close('bench done'),
    terminate: () => t.terminate(),
  };
}

/**
 * The four ways into the pod that every scenario measures side by side, behind one interface:
 * - podbridge: OpenSSH client / ssh2 Client -> podbridge -> exec WebSocket -> pod
 * - direct:    a plain exec WebSocket client -> pod (no SSH)
 * - direct-spdy: the SPDY/3.1 exec -> pod (no SSH): the path kubectl and the bridge take where
 *              WebSocket v5 is refused
 * - openssh:   OpenSSH client -> sshd on loopback -> a local shell (the SSH layer alone)
 * - recipe:    OpenSSH client -> sshd ForceCommand kubectl exec -> pod (the bastion recipe)
 * - candidate: podbridge started from another checkout (--candidate), to A/B a change in one run
 */
import fs from 'node:fs';
import type { Client, ClientChannel } from 'ssh2';
import { DirectExec, type DirectApi } from './direct.ts';
import { withTimeout } from './proc.ts';
import {
  opensshCountedDownload,
  opensshDownload,
  opensshTrue,
  opensshUpload,
  opensshVerify,
  ssh2Connect,
  ssh2Tty,
  type ClientKey,
  type SshEndpoint,
} from './ssh-clients.ts';

export type PathName = 'podbridge' | 'candidate' | 'direct' | 'direct-spdy' | 'openssh' | 'recipe';

export const PATH_LABELS: Record<PathName, string> = {
  podbridge: 'podbridge',
  candidate: 'podbridge candidate (--candidate)',
  direct: 'direct WebSocket exec',
  'direct-spdy': 'direct SPDY/3.1 exec',
  openssh: 'OpenSSH sshd (local shell)',
  recipe: 'sshd + kubectl exec (bastion recipe)',
};

/** An interactive stream with a terminal. */
export interface TtyStream {
  write(b: Buffer | string): void;
  onData(cb: (b: Buffer) => void): void;
  /** Resolves when the remote side ended the session (or the time limit passed). */
  ended(timeoutMs: number): Promise<boolean>;
  /** Ends it from our side at once. */
  destroy(): void;
}

/**
 * A download that starts on a signal: the remote command prints a mark on stderr, waits for one
 * line on stdin, prints a second mark and then streams. So many sessions can be set up first and
 * then all start at once; the second mark says when each stream really began (it reaches the
 * client just ahead of the data, on the same channel).
 */
export interface CountedStream {
  /** Resolves once the remote command is waiting for the go signal. */
  ready: Promise<void>;
  go(): void;
  /** Bytes received so far (as of the last poll for streams counted outside this process). */
  bytes: number;
  /** Refreshes `bytes` for streams not counted as they arrive; no-op otherwise. */
  poll(): void;
  /** When the data-start mark arrived (the stream began moving bytes). */
  firstAt: number | null;
  doneAt: number | null;
  done: Promise<void>;
  abort(): void;
}

/** The gated download every path runs. */
export const gatedDownload = (bytes: number): string => `printf R >&2; read go; printf D >&2; head -c ${bytes} /dev/zero`;

export interface BenchPath {
  name: PathName;
  label: string;
  /** SSH endpoint, null for the direct path. */
  ssh: SshEndpoint | null;
  /** Seconds from the remote command's start to the end of a download / upload of `bytes`. */
  download(bytes: number, timeoutMs: number): Promise<number>;
  upload(bytes: number, timeoutMs: number): Promise<number>;
  verify(bytes: number): Promise<void>;
  tty(command: string | null, cols?: number, rows?: number): Promise<TtyStream>;
  /** ms: `ssh target true` (direct: an exec of `true` from connect to its Status). */
  runTrue(): Promise<number>;
  countedDownload(bytes: number): CountedStream;
}

// ---- SSH paths ------------------------------------------------------------------------------

function channelStream(client: Client, ch: ClientChannel): TtyStream {
  let closed = false;
  const closedP = new Promise<void>((resolve) => {
    ch.once('close', () => {
      closed = true;
      resolve();
    });
  });
  ch.stderr.on('data', () => undefined);
  return {
    write: (b) => void ch.write(b),
    onData: (cb) => ch.on('data', cb),
    ended: async (timeoutMs) => {
      const ok = await Promise.race([closedP.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
      client.end();
      return ok;
    },
    destroy: () => {
      if (!closed) ch.close();
      client.end();
    },
  };
}

export function sshPath(name: PathName, ep: SshEndpoint, key: ClientKey): BenchPath {
  return {
    name,
    label: PATH_LABELS[name],
    ssh: ep,
    download: async (bytes, timeoutMs) => (await opensshDownload(ep, key, bytes, timeoutMs)).seconds,
    upload: async (bytes, timeoutMs) => (await opensshUpload(ep, key, bytes, timeoutMs)).seconds,
    verify: (bytes) => opensshVerify(ep, key, bytes),
    tty: async (command, cols, rows) => {
      const client = await ssh2Connect(ep, key);
      try {
        return channelStream(client, await ssh2Tty(client, command, cols, rows));
      } catch (err) {
        client.end();
        throw err;
      }
    },
    runTrue: () => opensshTrue(ep, key),
    countedDownload: (bytes) => {
      // stdout goes straight to /dev/null: reading 50 fast pipes in this process would make the
      // bench the bottleneck (it cut OpenSSH's aggregate to a quarter here). Progress is read from
      // the ssh client's write counter in /proc instead (its socket writes are a few KiB).
      const { child } = opensshCountedDownload(ep, key, gatedDownload(bytes));
      child.stdin?.on('error', () => undefined);
      let stderr = '';
      let base = 0;
      const s: CountedStream = {
        ready: new Promise<void>((resolve, reject) => {
          child.stderr?.on('data', (b: Buffer) => {
            stderr = (stderr + b.toString()).slice(-1000);
            if (stderr.includes('R')) resolve();
            // Not the first write counted in /proc: the client's own packets after the go line
            // (the line, EOF, window adjusts) counted as "first bytes" at the go signal, so a
            // stream that had not begun looked starved (issue 15 item 9).
            if (s.firstAt === null && stderr.includes('D')) s.firstAt = performance.now();
          });
          child.once('exit', (code) => reject(new Error(`${name} stream ended before it was ready (exit ${code}): ${stderr.trim()}`)));
        }),
        go: () => {
          // What the client wrote so far (handshake, the go line) is not download progress.
          base = child.pid !== undefined ? (writtenBytes(child.pid) ?? 0) + 3 : 0;
          child.stdin?.end('go\n');
        },
        bytes: 0,
        firstAt: null,
        doneAt: null,
        poll: () => {
          if (s.doneAt !== null || child.pid === undefined) return;
          const w = writtenBytes(child.pid);
          if (w === null) return;
          s.bytes = s.firstAt === null ? 0 : Math.max(0, Math.min(w - base, bytes));
        },
        done: new Promise<void>((resolve, reject) => {
          child.once('exit', (code) => {
            const now = performance.now();
            s.firstAt ??= now;
            s.doneAt = now;
            s.bytes = bytes;
            if (code !== 0) reject(new Error(`${name} stream: exit ${code}; ${stderr.trim()}`));
            else resolve();
          });
        }),
        abort: () => child.kill('SIGKILL'),
      };
      s.ready.catch(() => undefined);
      return s;
    },
  };
}

/** Bytes a process has written (write(2) and friends), from /proc/PID/io. */
function writtenBytes(pid: number): number | null {
  try {
    const m = /^wchar:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// ---- direct path ----------------------------------------------------------------------------

function execStream(exec: DirectExec): TtyStream {
  let closed = false;
  void exec.done.then(() => (closed = true));
  return {
    write: (b) => exec.write(Buffer.isBuffer(b) ? b : Buffer.from(b)),
    onData: (cb) => {
      exec.onStdout = cb;
    },
    ended: async (timeoutMs) => {
      const ok = await Promise.race([exec.done.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref())]);
      if (!ok) exec.terminate();
      return ok;
    },
    destroy: () => {
      if (!closed) exec.terminate();
    },
  };
}

export function directPath(d: DirectApi, protocol: 'websocket' | 'spdy' = 'websocket'): BenchPath {
  const name: PathName = protocol === 'spdy' ? 'direct-spdy' : 'direct';
  const open = (spec: Parameters<typeof DirectExec.open>[1]) => (protocol === 'spdy' ? DirectExec.openSpdy(d, spec) : DirectExec.open(d, spec));
  const timed = async (command: string, timeoutMs: number, stdin: ((e: DirectExec) => Promise<void>) | null, expectStdout?: number): Promise<number> => {
    const exec = await open({ command: `printf S >&2; ${command}`, tty: null });
    let started = 0;
    let stdout = 0;
    exec.onStderr = () => {
      if (started === 0) started = performance.now();
    };
    exec.onStdout = (b) => (stdout += b.length);
    if (stdin) await stdin(exec);
    const exit = await withTimeout(exec.done, timeoutMs, `direct: ${command}`);
    const end = performance.now();
    if (exit.code !== 0) throw new Error(`direct: ${command}: exit ${exit.code} ${exit.status}`);
    if (expectStdout !== undefined && stdout !== expectStdout) throw new Error(`direct: ${command}: ${stdout}/${expectStdout} bytes`);
    if (started === 0) throw new Error(`direct: ${command}: the start mark never arrived`);
    return (end - started) / 1000;
  };
  const upload = async (e: DirectExec, bytes: number) => {
    await e.sendZeros(bytes);
    e.closeStdin();
  };
  return {
    name,
    label: PATH_LABELS[name],
    ssh: null,
    download: (bytes, timeoutMs) => timed(`head -c ${bytes} /dev/zero`, timeoutMs, null, bytes),
    upload: (bytes, timeoutMs) => timed('cat > /dev/null', timeoutMs, (e) => upload(e, bytes)),
    verify: async (bytes) => {
      await timed(`head -c ${bytes} /dev/zero`, 60_000, null, bytes);
      const exec = await open({ command: 'wc -c', tty: null });
      let out = '';
      exec.onStdout = (b) => (out += b.toString());
      await upload(exec, bytes);
      const exit = await withTimeout(exec.done, 60_000, 'direct: wc -c');
      if (exit.code !== 0 || Number(out.trim()) !== bytes) throw new Error(`direct integrity check (up) failed: exit ${exit.code}, got "${out.trim()}"`);
    },
    tty: async (command, cols = 120, rows = 40) => execStream(await open({ command, tty: { cols, rows } })),
    runTrue: async () => {
      const at = performance.now();
      const exec = await open({ command: 'true', tty: null });
      const exit = await withTimeout(exec.done, 60_000, 'direct: true');
      if (exit.code !== 0) throw new Error(`direct: true: exit ${exit.code} ${exit.status}`);
      return performance.now() - at;
    },
    countedDownload: (bytes) => {
      const opened = open({ command: gatedDownload(bytes), tty: null });
      let execRef: DirectExec | null = null;
      const s: CountedStream = {
        ready: opened.then(
          (exec) =>
            new Promise<void>((resolve, reject) => {
              execRef = exec;
              exec.onStderr = (b) => {
                if (b.includes(82 /* R */)) resolve();
                if (b.includes(68 /* D */)) s.firstAt ??= performance.now();
              };
              exec.onStdout = (b) => {
                const now = performance.now();
                s.firstAt ??= now;
                s.bytes += b.length;
                if (s.bytes >= bytes) s.doneAt = now;
              };
              void exec.done.then((e) => reject(new Error(`direct stream ended before it was ready: ${e.status}`)));
            }),
        ),
        go: () => {
          execRef?.write(Buffer.from('go\n'));
          execRef?.closeStdin();
        },
        bytes: 0,
        firstAt: null,
        doneAt: null,
        poll: () => undefined,
        done: opened.then(async (exec) => {
          const exit = await exec.done;
          if (exit.code !== 0 || s.bytes !== bytes) throw new Error(`direct stream: exit ${exit.code}, ${s.bytes}/${bytes} bytes`);
        }),
        abort: () => execRef?.terminate(),
      };
      s.ready.catch(() => undefined);
      s.done.catch(() => undefined);
      return s;
    },
  };
}

/**
 * podbridge as a child process (`node dist/cli.js serve ...` of the tree under test, compiled
 * first: no TypeScript loader in the measured process), so RSS, CPU and file
 * descriptors read from /proc are the bridge's alone, with a throwaway host key and
 * authorized_keys. Optional CPU profile and heap snapshots for the profiling pass.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import WebSocket from 'ws';
import { execFileSync } from 'node:child_process';
import { sample, sleep, startChild, stopChild, withTimeout, type ProcSample } from './proc.ts';
import { REPO } from '../../test/helpers/paths.ts';

const builtTrees = new Map<string, string>();

/** Compiles a podbridge tree (this one, or a candidate's copy) to its dist/ once per bench run,
 *  with this checkout's TypeScript, and returns its CLI entry. */
export function buildTree(root: string): string {
  const cached = builtTrees.get(root);
  if (cached) return cached;
  const entry = path.join(root, 'dist', 'cli.js');
  // A dist/ newer than every source file is what tsc would write again (a compile costs a
  // minute or two on a loaded machine).
  const at = mtimeMs(entry);
  if (at !== null && at > newestSource(root)) {
    builtTrees.set(root, entry);
    return entry;
  }
  execFileSync(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  builtTrees.set(root, entry);
  return entry;
}

function mtimeMs(file: string): number | null {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

/** The newest mtime among the tree's sources and build settings. */
function newestSource(root: string): number {
  let newest = Math.max(mtimeMs(path.join(root, 'tsconfig.build.json')) ?? Infinity, mtimeMs(path.join(root, 'tsconfig.json')) ?? 0, mtimeMs(path.join(root, 'package.json')) ?? 0);
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else newest = Math.max(newest, mtimeMs(f) ?? Infinity);
    }
  };
  walk(path.join(root, 'src'));
  return newest;
}

export interface BridgeOptions {
  root: string;
  dir: string;
  kubeconfig: string;
  /** authorized_keys line of the bench's client key. */
  publicKeyLine: string;
  /** Write a V8 CPU profile on exit into this directory. */
  cpuProfDir?: string;
  /** Allow heap snapshots on SIGUSR2 (written into `dir`). */
  heapSnapshots?: boolean;
  /** Extra `serve` flags. */
  extraArgs?: string[];
  /** Instead of `--backend kubernetes --kubeconfig KUBECONFIG` (the Docker scenario). */
  backendArgs?: string[];
  /** Open the V8 inspector on a loopback port, for forced GCs and process.memoryUsage(). */
  inspector?: boolean;
  /** Extra environment (e.g. MALLOC_ARENA_MAX) for an A/B of runtime settings. */
  env?: Record<string, string>;
}

export interface MemoryUsage {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export interface BridgeProcess {
  pid: number;
  port: number;
  /** Garbage collections so far (from --trace-gc): full mark-compacts and scavenges. */
  gc: { major: number; minor: number };
  /** Log lines seen, by level name (warn/error counts tell whether a run was clean). */
  logCounts: Record<string, number>;
  lastErrors: string[];
  sample(): ProcSample;
  /** SIGUSR2 heap snapshot; resolves with the file once it has been written. */
  heapSnapshot(): Promise<string | null>;
  /** Through the inspector (when started with `inspector`): a full GC, then process.memoryUsage(). */
  gcAndMemory(): Promise<MemoryUsage | null>;
  stop(): Promise<void>;
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export async function startBridgeProcess(o: BridgeOptions): Promise<BridgeProcess> {
  fs.mkdirSync(o.dir, { recursive: true });
  const authorizedKeys = path.join(o.dir, 'authorized_keys');
  fs.writeFileSync(authorizedKeys, `${o.publicKeyLine}\n`, { mode: 0o600 });
  const hostKey = path.join(o.dir, 'ssh_host_ed25519_key');
  // --trace-gc: one stdout line per GC (not JSON, so the log parser below skips it), counted so
  // every round can say how many full mark-compacts the bridge ran. A bridge whose V8 heap limit
  // ended up just above its live heap runs one every ~2 MB promoted (6-10 per 64 MiB round
  // against none for an identical bridge in the same run) and pays ~2x the CPU per GiB for it:
  // the "role bias" of A/B runs (docs/benchmarks.md).
  const nodeArgs: string[] = ['--trace-gc'];
  if (o.cpuProfDir) nodeArgs.push('--cpu-prof', '--cpu-prof-dir', o.cpuProfDir);
  // Snapshots go to --diagnostic-dir.
  if (o.heapSnapshots) nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${o.dir}`);
  if (o.inspector) nodeArgs.push('--inspect=127.0.0.1:0');
  const args = [
    ...nodeArgs,
    buildTree(o.root),
    'serve',
    '--listen', '127.0.0.1:0',
    '--host-key', hostKey,
    '--authorized-keys', authorizedKeys,
    ...(o.backendArgs ?? ['--backend', 'kubernetes', '--kubeconfig', o.kubeconfig]),
    // The scale scenario holds thousands of sessions of one key and the streams scenario opens 50
    // connections at once from one address: lift the per-identity, per-source, start-up and
    // unauthenticated-rate limits, keep every other default (keepalives, algorithms, logging at info).
    '--max-sessions-per-identity', '100000',
    '--max-connections-per-identity', '100000',
    '--max-connections-per-source', '100000',
    '--max-startups', '1000',
    '--max-connection-rate', '0',
    '--shutdown-grace', '0',
    ...(o.extraArgs ?? []),
  ];
  const child: ChildProcess = startChild(process.execPath, args, { cwd: o.root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...o.env } });
  const logCounts: Record<string, number> = {};
  const gc = { major: 0, minor: 0 };
  const lastErrors: string[] = [];
  let stderr = '';
  let inspectorUrl: string | null = null;
  child.stderr?.on('data', (b: Buffer) => {
    stderr = (stderr + b.toString()).slice(-4000);
    inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)/.exec(stderr)?.[1] ?? null;
  });
  const lines = readline.createInterface({ input: child.stdout! });
  let resolvePort: (p: number) => void = () => undefined;
  const port = new Promise<number>((r) => (resolvePort = r));
  lines.on('line', (line) => {
    let rec: { level?: number; msg?: string; address?: string };
    if (line.includes(' ms: Mark-Compact ')) gc.major++;
    else if (line.includes(' ms: Scavenge ')) gc.minor++;
    try {
      rec = JSON.parse(line) as typeof rec;
    } catch {
      return;
    }
    const level = LEVELS[rec.level ?? 30] ?? String(rec.level);
    logCounts[level] = (logCounts[level] ?? 0) + 1;
    if ((rec.level ?? 0) >= 50) {
      lastErrors.push(line.slice(0, 500));
      if (lastErrors.length > 5) lastErrors.shift();
    }
    if (rec.msg === 'listening' && rec.address) resolvePort(Number(rec.address.slice(rec.address.lastIndexOf(':') + 1)));
  });
  const listening = await withTimeout(
    Promise.race([port, new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`podbridge exited (${code}) before listening: ${stderr}`))))]),
    60_000,
    'starting podbridge',
  );
  const pid = child.pid as number;
  return {
    pid,
    port: listening,
    gc,
    logCounts,
    lastErrors,
    sample: () => {
      const s = sample(pid);
      if (s === null) throw new Error(`podbridge (pid ${pid}) is gone: ${stderr}`);
      return s;
    },
    heapSnapshot: async () => {
      const before = new Set(fs.readdirSync(o.dir));
      process.kill(pid, 'SIGUSR2');
      // Writing is synchronous in the bridge; the file appears when it is complete enough to
      // be renamed, so wait until its size stops changing (bounded).
      for (let i = 0; i < 600; i++) {
        await sleep(500);
        const fresh = fs.readdirSync(o.dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
        if (fresh) {
          const file = path.join(o.dir, fresh);
          let size = -1;
          for (let j = 0; j < 120; j++) {
            const now = fs.statSync(file).size;
            if (now === size && now > 0) return file;
            size = now;
            await sleep(500);
          }
          return file;
        }
      }
      return null;
    },
    gcAndMemory: async () => {
      if (!inspectorUrl) return null;
      const ws = new WebSocket(inspectorUrl);
      try {
        await withTimeout(new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        }), 10_000, 'inspector connect');
        let id = 0;
        const call = (method: string, params: Record<string, unknown> = {}) =>
          withTimeout(
            new Promise<unknown>((resolve, reject) => {
              const my = ++id;
              const onMessage = (data: Buffer) => {
                const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
                if (msg.id !== my) return;
                ws.off('message', onMessage);
                if (msg.error) reject(new Error(msg.error.message));
                else resolve(msg.result);
              };
              ws.on('message', onMessage);
              ws.send(JSON.stringify({ id: my, method, params }));
            }),
            60_000,
            `inspector ${method}`,
          );
        await call('HeapProfiler.collectGarbage');
        await call('HeapProfiler.collectGarbage');
        const r = (await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })) as { result: { value: string } };
        return JSON.parse(r.result.value) as MemoryUsage;
      } finally {
        ws.terminate();
      }
    },
    // SIGINT: the CLI shuts down with no grace period and exits normally (the CPU profile is
    // written on a normal exit only).
    stop: () => stopChild(child, 'SIGINT', 20_000),
  };
}

/**
 * Processes: what /proc says about one process or a process tree (RSS, PSS, CPU, fds), and the
 * children this benchmark starts, each stopped by its own pid when the run ends.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import fs from 'node:fs';

let clockTicks = 0;

/** Kernel clock ticks per second (USER_HZ), for the CPU times in /proc/PID/stat. */
export function ticksPerSecond(): number {
  if (clockTicks > 0) return clockTicks;
  try {
    clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    clockTicks = 100;
  }
  return clockTicks;
}

export interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
  /** utime + stime, in ms. */
  cpuMs: number;
  /** cutime + cstime, in ms: CPU of children this process has waited for. */
  childCpuMs: number;
  comm: string;
}

export function procStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const rest = text.slice(close + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const cutime = Number(rest[13]);
  const cstime = Number(rest[14]);
  const hz = ticksPerSecond();
  return { pid, ppid: Number(rest[1]), state: rest[0] ?? '', cpuMs: ((utime + stime) * 1000) / hz, childCpuMs: ((cutime + cstime) * 1000) / hz, comm };
}

/** The main thread's time on a CPU and waiting in a run queue for one, ms (/proc/PID/schedstat). */
export function schedStat(pid: number): { runMs: number; waitMs: number } | null {
  try {
    const [run, wait] = fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    if (run === undefined || wait === undefined || !Number.isFinite(run) || !Number.isFinite(wait)) return null;
    return { runMs: run / 1e6, waitMs: wait / 1e6 };
  } catch {
    return null;
  }
}

function statusField(pid: number, field: string): number | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Resident set size in KiB. */
export function rssKiB(pid: number): number | null {
  return statusField(pid, 'VmRSS');
}

/** Proportional set size in KiB (shared pages divided among their users); null if unreadable. */
export function pssKiB(pid: number): number | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const m = /^Pss:\s+(\d+)/m.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function fdCount(pid: number): number | null {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

export function threadCount(pid: number): number | null {
  return statusField(pid, 'Threads');
}

export interface ProcSample {
  at: number;
  rssKiB: number;
  pssKiB: number | null;
  cpuMs: number;
  fds: number;
  threads: number;
}

export function sample(pid: number): ProcSample | null {
  const st = procStat(pid);
  const rss = rssKiB(pid);
  if (st === null || rss === null) return null;
  return { at: performance.now(), rssKiB: rss, pssKiB: pssKiB(pid), cpuMs: st.cpuMs, fds: fdCount(pid) ?? 0, threads: threadCount(pid) ?? 0 };
}

/** Every process now alive, for tree walks. */
export function allProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    const st = procStat(Number(ent));
    if (st !== null && st.state !== 'Z') out.push(st);
  }
  return out;
}

/** Descendants of `root` (not `root` itself). */
export function descendants(root: number, procs: ProcStat[] = allProcesses()): ProcStat[] {
  const children = new Map<number, ProcStat[]>();
  for (const p of procs) {
    const list = children.get(p.ppid) ?? [];
    list.push(p);
    children.set(p.ppid, list);
  }
  const out: ProcStat[] = [];
  const queue = [root];
  for (let i = 0; i < queue.length && i < 100_000; i++) {
    for (const c of children.get(queue[i] as number) ?? []) {
      out.push(c);
      queue.push(c.pid);
    }
  }
  return out;
}

export interface TreeMemory {
  processes: number;
  rssKiB: number;
  pssKiB: number;
  /** RSS and PSS by command name (sshd, kubectl, bash...). */
  byCommand: Record<string, { processes: number; rssKiB: number; pssKiB: number }>;
}

export function treeMemory(pids: readonly ProcStat[]): TreeMemory {
  const mem: TreeMemory = { processes: 0, rssKiB: 0, pssKiB: 0, byCommand: {} };
  for (const p of pids) {
    const rss = rssKiB(p.pid);
    if (rss === null) continue;
    const pss = pssKiB(p.pid) ?? rss;
    mem.processes++;
    mem.rssKiB += rss;
    mem.pssKiB += pss;
    const c = (mem.byCommand[p.comm] ??= { processes: 0, rssKiB: 0, pssKiB: 0 });
    c.processes++;
    c.rssKiB += rss;
    c.pssKiB += pss;
  }
  return mem;
}

/** The soft and hard RLIMIT_NOFILE of a process. */
export function nofileLimit(pid: number | 'self' = 'self'): { soft: number; hard: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/limits`, 'utf8');
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
    if (!m) return null;
    const n = (s: string | undefined) => (s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
    return { soft: n(m[1]), hard: n(m[2]) };
  } catch {
    return null;
  }
}

/**
 * Makes sure this process may open `wanted` files: prlimit(1) on our own pid (raising the hard
 * limit needs root). Children inherit the limit. Returns what is in force afterwards.
 */
export function ensureNofile(wanted: number): { soft: number; hard: number; raised: boolean; note?: string } {
  const now = nofileLimit() ?? { soft: 1024, hard: 1024 };
  if (now.soft >= wanted) return { ...now, raised: false };
  const target = process.getuid?.() === 0 ? Math.max(wanted, now.hard) : Math.min(wanted, now.hard);
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${Math.max(target, now.hard)}`], { stdio: 'ignore' });
  } catch (err) {
    return { ...now, raised: false, note: `prlimit failed: ${(err as Error).message.split('\n')[0] ?? ''}` };
  }
  const after = nofileLimit() ?? now;
  return { ...after, raised: true, note: after.soft < wanted ? `only ${after.soft} file descriptors allowed (hard limit); run as root or raise \`ulimit -Hn\`` : undefined };
}

// ---- children -----------------------------------------------------------------------------

const started = new Set<ChildProcess>();

/** spawn() that remembers the child so `stopAll` can end it by its pid. */
export function startChild(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, opts);
  started.add(child);
  child.once('exit', () => started.delete(child));
  child.once('error', () => started.delete(child));
  return child;
}

/** Signals one child and waits (bounded) for it to exit; SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(child.pid, signal);
  } catch {
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs)))]);
  clearTimeout(timer);
  if (timedOut) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // gone
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
  }
}

/** Synchronous last resort on exit: SIGKILL every child we started that is still running. */
export function killAllChildrenSync(): void {
  for (const child of started) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command to completion with a time limit; never rejects. */
export function run(cmd: string, args: readonly string[], opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; input?: string }): Promise<RunResult> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = startChild(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    } catch (err) {
      resolve({ code: null, signal: null, stdout: '', stderr: (err as Error).message, timedOut: false });
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, stdout: '', stderr: e.message, timedOut: false });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut });
    });
  });
}

export function which(cmd: string, extra: readonly string[] = []): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/local/sbin', ...extra];
  for (const d of dirs) {
    if (d === '') continue;
    const p = `${d}/${cmd}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rejects after `ms` with `what` in the message; the timer never keeps the process alive. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

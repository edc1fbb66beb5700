/**
 * Scenario 1: bulk throughput. Download: `head -c N /dev/zero` in the pod, the client discards it
 * (OpenSSH's stdout on /dev/null). Upload: N bytes from the client into `cat > /dev/null`.
 * Rounds alternate the paths (A B C D, B C D A, ...); median and spread per path. Timing runs from
 * the remote command's first byte (it prints a mark on stderr before moving data) to the end, so
 * session set-up (measured on its own in the setup scenario) does not dilute the rate.
 */
import { alternate, bridgeOf, errorOf, type BenchContext, type PathError } from '../lib/context.ts';
import { cpuPer, readCpu, type CpuPart } from '../lib/cpu.ts';
import type { PathName } from '../lib/paths.ts';
import { descendants, procStat, sleep } from '../lib/proc.ts';
import { median, round, summarize, type Summary } from '../lib/stats.ts';

export type CpuBreakdown = Record<CpuPart | 'total', number>;

export interface ThroughputResult {
  direction: 'download' | 'upload';
  bytes: number;
  rounds: number;
  unit: 'MiB/s';
  paths: Partial<Record<PathName, Summary | PathError>>;
  /**
   * CPU seconds per GiB moved, by process, median over rounds (see lib/cpu.ts). On a machine with
   * fewer cores than busy processes, the total is what bounds the throughput.
   */
  cpuSecondsPerGiB: Partial<Record<PathName, CpuBreakdown>>;
  /** The bridge's (or candidate's) CPU seconds per GiB in each counted round, in order: spread
   *  and drift between rounds, which a median hides. */
  bridgeCpuRounds?: Partial<Record<PathName, number[]>>;
  /** Full mark-compacts the bridge ran in each counted round: an A/B whose two bridges differ
   *  here by tens per round compares V8 heap states, not code (docs/benchmarks.md). */
  bridgeMajorGcRounds?: Partial<Record<PathName, number[]>>;
  truncated: boolean;
}

/** sshd reaps its per-connection processes a moment after the client exits: wait for that. */
async function sshdSettled(ctx: BenchContext): Promise<void> {
  for (const s of [ctx.sshd.openssh, ctx.sshd.recipe]) {
    if (!s) continue;
    for (let i = 0; i < 40 && descendants(s.pid).length > 0; i++) await sleep(50);
  }
}

/** The warm-up transfer per path (or the round's size, if smaller). */
const WARM_UP_BYTES = 64 * 2 ** 20;

/**
 * A bridge goes on working for a moment after the client exits (closing the channel and the
 * exec WebSocket, freeing the session): wait (bounded) until neither bridge's CPU counter moves
 * over 100 ms, so a round is charged its own tail and not the next round's path.
 */
async function bridgesSettled(ctx: BenchContext): Promise<void> {
  const pids = [ctx.bridge.pid, ...(ctx.candidate ? [ctx.candidate.pid] : [])];
  const read = () => pids.map((pid) => procStat(pid)?.cpuMs ?? 0).join(',');
  let last = read();
  for (let i = 0; i < 20; i++) {
    await sleep(100);
    const now = read();
    if (now === last) return;
    last = now;
  }
}

export async function throughput(ctx: BenchContext, direction: 'download' | 'upload', bytes: number, rounds: number, deadline: number): Promise<ThroughputResult> {
  const rates: Partial<Record<PathName, number[]>> = {};
  const errors: Partial<Record<PathName, PathError>> = {};
  const cpu: Partial<Record<PathName, CpuBreakdown[]>> = {};
  const majorGcs: Partial<Record<PathName, number[]>> = {};
  const timeoutMs = Math.max(60_000, (bytes / (5 * 2 ** 20)) * 1000); // never slower than 5 MiB/s
  // Uncounted warm-up, one transfer per path: the first large transfer through a fresh bridge
  // costs it 2-3x the CPU per GiB of the later ones (JIT, heap growth; 15.4 and 12.6 against
  // 4.6-7.4 CPU-s/GiB for the two bridges of an identical A/B), and the 4 MiB integrity check
  // is too small to pay that. Without it that cost fell on whichever rounds came first.
  // Its time does not come out of the scenario's budget for rounds.
  const warmBytes = Math.min(bytes, WARM_UP_BYTES);
  const warmStart = Date.now();
  for (const p of ctx.paths) {
    if (Date.now() > deadline) break;
    try {
      if (direction === 'download') await p.download(warmBytes, timeoutMs);
      else await p.upload(warmBytes, timeoutMs);
    } catch (err) {
      errors[p.name] = errorOf(err);
      ctx.progress(`  ${direction} ${p.name} (warm-up): ${errors[p.name]?.error}`);
    }
  }
  // Then a forced full GC in each bridge: V8 sets the next old-generation limit from the live
  // heap and its measured GC and mutator speeds at each full GC, and a bridge whose limit was
  // left just above its live heap by its start-up history mark-compacts its whole heap every
  // few MiB promoted (see bridgeMajorGcRounds): both now start the rounds from a GC taken alike.
  await Promise.all([ctx.bridge.gcAndMemory(), ctx.candidate?.gcAndMemory()].map((p) => p?.catch(() => null)));
  await bridgesSettled(ctx);
  const { done, truncated } = await alternate(ctx.paths, rounds, deadline + (Date.now() - warmStart), async (p) => {
    if (errors[p.name]) return;
    await sshdSettled(ctx);
    const c0 = readCpu(ctx);
    const bridge = bridgeOf(ctx, p.name);
    const gc0 = bridge ? bridge.gc.major : 0;
    try {
      const seconds = direction === 'download' ? await p.download(bytes, timeoutMs) : await p.upload(bytes, timeoutMs);
      (rates[p.name] ??= []).push(bytes / 2 ** 20 / seconds);
      await sshdSettled(ctx);
      await bridgesSettled(ctx);
      (cpu[p.name] ??= []).push(cpuPer(c0, readCpu(ctx), bytes / 2 ** 30));
      if (bridge) (majorGcs[p.name] ??= []).push(bridge.gc.major - gc0);
    } catch (err) {
      errors[p.name] = errorOf(err);
      ctx.progress(`  ${direction} ${p.name}: ${errors[p.name]?.error}`);
    }
  });
  const paths: ThroughputResult['paths'] = {};
  const cpuSecondsPerGiB: ThroughputResult['cpuSecondsPerGiB'] = {};
  for (const p of ctx.paths) {
    const e = errors[p.name];
    const v = rates[p.name];
    if (e) paths[p.name] = e;
    else if (v && v.length > 0) paths[p.name] = summarize(v, 1);
    const c = cpu[p.name];
    if (c && c.length > 0) {
      const keys = Object.keys(c[0] as CpuBreakdown) as Array<keyof CpuBreakdown>;
      cpuSecondsPerGiB[p.name] = Object.fromEntries(keys.map((k) => [k, round(median(c.map((x) => x[k])), 2)])) as CpuBreakdown;
    }
  }
  const bridgeCpuRounds: Partial<Record<PathName, number[]>> = {};
  for (const [name, c] of Object.entries(cpu) as Array<[PathName, CpuBreakdown[]]>) {
    if (name === 'podbridge' || name === 'candidate') bridgeCpuRounds[name] = c.map((x) => round(x.bridge + x.candidate, 2));
  }
  for (const name of Object.keys(bridgeCpuRounds) as PathName[]) {
    ctx.progress(`  ${direction} ${name}: bridge CPU-s/GiB by round ${bridgeCpuRounds[name]?.join(' ')}; full GCs by round ${majorGcs[name]?.join(' ')}`);
  }
  return { direction, bytes, rounds: done, unit: 'MiB/s', paths, cpuSecondsPerGiB, bridgeCpuRounds, bridgeMajorGcRounds: majorGcs, truncated };
}

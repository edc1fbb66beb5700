/**
 * Scenario 1: bulk throughput. Download: `head -c N /dev/zero` in the pod, the client discards it
 * (OpenSSH's stdout on /dev/null). Upload: N bytes from the client into `cat > /dev/null`.
 * Rounds alternate the paths (A B C D, B C D A, ...); median and spread per path. Timing runs from
 * the remote command's first byte (it prints a mark on stderr before moving data) to the end, so
 * session set-up (measured on its own in the setup scenario) does not dilute the rate.
 */
import { alternate, errorOf, type BenchContext, type PathError } from '../lib/context.ts';
import { cpuPer, readCpu, type CpuPart } from '../lib/cpu.ts';
import type { PathName } from '../lib/paths.ts';
import { descendants, sleep } from '../lib/proc.ts';
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
  truncated: boolean;
}

/** sshd reaps its per-connection processes a moment after the client exits: wait for that. */
async function sshdSettled(ctx: BenchContext): Promise<void> {
  for (const s of [ctx.sshd.openssh, ctx.sshd.recipe]) {
    if (!s) continue;
    for (let i = 0; i < 40 && descendants(s.pid).length > 0; i++) await sleep(50);
  }
}

export async function throughput(ctx: BenchContext, direction: 'download' | 'upload', bytes: number, rounds: number, deadline: number): Promise<ThroughputResult> {
  const rates: Partial<Record<PathName, number[]>> = {};
  const errors: Partial<Record<PathName, PathError>> = {};
  const cpu: Partial<Record<PathName, CpuBreakdown[]>> = {};
  const timeoutMs = Math.max(60_000, (bytes / (5 * 2 ** 20)) * 1000); // never slower than 5 MiB/s
  const { done, truncated } = await alternate(ctx.paths, rounds, deadline, async (p) => {
    if (errors[p.name]) return;
    await sshdSettled(ctx);
    const c0 = readCpu(ctx);
    try {
      const seconds = direction === 'download' ? await p.download(bytes, timeoutMs) : await p.upload(bytes, timeoutMs);
      (rates[p.name] ??= []).push(bytes / 2 ** 20 / seconds);
      await sshdSettled(ctx);
      (cpu[p.name] ??= []).push(cpuPer(c0, readCpu(ctx), bytes / 2 ** 30));
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
  return { direction, bytes, rounds: done, unit: 'MiB/s', paths, cpuSecondsPerGiB, truncated };
}

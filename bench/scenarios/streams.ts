/**
 * Scenario 4b: 50 sessions streaming at once. All sessions are set up first and wait; then all
 * start `head -c N /dev/zero` together. Aggregate throughput from the go signal to the last
 * stream's end, and fairness: each stream's rate inside the window when all of them were running
 * (from the last stream's start to the first stream's end), slowest / fastest. A stream's start
 * is a mark the remote command prints on stderr right before its data; the time from the go
 * signal to the last start is reported on its own (start skew), as it is not a share of the
 * bandwidth. OpenSSH clients write to /dev/null and their progress is read from /proc (reading 50
 * pipes here would make the bench the bottleneck); the direct client counts in this process. For
 * podbridge, also the bridge's peak RSS, its CPU, and how long its main thread waited in the
 * kernel's run queue (with the 50 clients on the same machine, the one-threaded bridge gets a
 * small share of the CPU and then every stream stalls at once).
 */
import fs from 'node:fs';
import { alternate, bridgeOf, errorOf, type BenchContext, type PathError } from '../lib/context.ts';
import type { CountedStream, PathName } from '../lib/paths.ts';
import { procStat, rssKiB, schedStat, withTimeout } from '../lib/proc.ts';
import { median, round } from '../lib/stats.ts';

export interface StreamsRun {
  /** Total bytes / (last stream done - go signal), MiB/s. */
  aggregateMiBps: number;
  /** Sum of the per-stream rates inside the all-running window, MiB/s. */
  windowAggregateMiBps: number | null;
  windowSeconds: number;
  /** slowest / fastest per-stream rate inside the window (1 = perfectly fair). */
  fairness: number | null;
  perStreamMiBps: { min: number; median: number; max: number } | null;
  /** slowest / fastest over the whole run, each stream timed from the go signal to its end. */
  wholeRunFairness: number;
  /** From the go signal to the last stream's end. */
  seconds: number;
  /** From the go signal to the last stream's start (first and median too), s. */
  startSkew: { first: number; median: number; last: number };
  /** Setting up all sessions before the go signal. */
  setupSeconds: number;
  /** The slowest stream inside the window, for a closer look. */
  slowest?: { index: number; firstAtS: number; doneAtS: number; windowS: number[]; bytesAtWindow: number[] };
  bridgePeakRssKiB?: number;
  bridgeCpuSeconds?: number;
  /** The bridge's main thread (its event loop): on a CPU, and runnable but waiting for one, s. */
  bridgeMainThread?: { runSeconds: number; runQueueWaitSeconds: number };
}

export interface StreamsResult {
  streams: number;
  bytesPerStream: number;
  rounds: number;
  paths: Partial<Record<PathName, { runs: StreamsRun[]; aggregateMiBps: number; fairness: number | null } | PathError>>;
  truncated: boolean;
}

interface Snapshot {
  t: number;
  bytes: number[];
}

function bytesAt(snaps: Snapshot[], i: number, t: number): number {
  // Linear interpolation between the two snapshots around t.
  let lo = snaps[0] as Snapshot;
  for (const s of snaps) {
    if (s.t <= t) lo = s;
    else {
      const a = lo.bytes[i] as number;
      const b = s.bytes[i] as number;
      return s.t === lo.t ? b : a + ((b - a) * (t - lo.t)) / (s.t - lo.t);
    }
  }
  return lo.bytes[i] as number;
}

async function oneRun(ctx: BenchContext, name: PathName, n: number, bytes: number, timeoutMs: number, seriesFile?: string): Promise<StreamsRun> {
  const p = ctx.paths.find((x) => x.name === name);
  if (!p) throw new Error(`no path ${name}`);
  // Set every session up first (each waits for a go line), then start them all at once: the
  // skew of 50 concurrent set-ups would otherwise be longer than the streams themselves.
  const setupStart = performance.now();
  const streams: CountedStream[] = Array.from({ length: n }, () => p.countedDownload(bytes));
  try {
    await withTimeout(Promise.all(streams.map((s) => s.ready)), 120_000, `${n} ${name} sessions getting ready`);
  } catch (err) {
    for (const s of streams) s.abort();
    throw err;
  }
  const setupSeconds = (performance.now() - setupStart) / 1000;
  const start = performance.now();
  const bp = bridgeOf(ctx, name);
  const cpu0 = bp ? (procStat(bp.pid)?.cpuMs ?? 0) : 0;
  const sched0 = bp ? schedStat(bp.pid) : null;
  for (const s of streams) s.go();
  const snaps: Snapshot[] = [];
  let peak = 0;
  const tick = setInterval(() => {
    for (const s of streams) s.poll();
    snaps.push({ t: performance.now(), bytes: streams.map((s) => s.bytes) });
    if (bp) peak = Math.max(peak, rssKiB(bp.pid) ?? 0);
  }, 20);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(streams.map((s) => s.done)),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`not done within ${timeoutMs} ms`)), timeoutMs))),
    ]);
  } catch (err) {
    for (const s of streams) s.abort();
    throw err;
  } finally {
    clearTimeout(timer);
    clearInterval(tick);
  }
  const end = performance.now();
  for (const s of streams) s.poll();
  snaps.push({ t: end, bytes: streams.map((s) => s.bytes) });
  if (seriesFile) {
    // Times in ms of performance.now(); origin + t = ms since the epoch.
    fs.appendFileSync(seriesFile, `${JSON.stringify({ name, origin: performance.timeOrigin, start, end, firsts: streams.map((s) => s.firstAt), dones: streams.map((s) => s.doneAt), snaps })}\n`);
  }
  const firsts = streams.map((s) => s.firstAt ?? end);
  const dones = streams.map((s) => s.doneAt ?? end);
  const wStart = Math.max(...firsts);
  const wEnd = Math.min(...dones);
  const window = wEnd - wStart;
  let rates: number[] | null = null;
  // Needs a window of many snapshots, and a good part of the run, to say anything: 50 OpenSSH
  // streams on loopback often overlap for only a second of a 3 s run.
  if (window > Math.max(1000, 0.25 * (Math.max(...dones) - start))) rates = streams.map((_, i) => (bytesAt(snaps, i, wEnd) - bytesAt(snaps, i, wStart)) / 2 ** 20 / (window / 1000));
  // Over the whole run every stream is timed from the common go signal to its own end.
  const whole = streams.map((_, i) => bytes / 2 ** 20 / Math.max(0.001, ((dones[i] as number) - start) / 1000));
  const lastDone = Math.max(...dones);
  const run: StreamsRun = {
    aggregateMiBps: round((n * bytes) / 2 ** 20 / ((lastDone - start) / 1000), 1),
    windowAggregateMiBps: rates ? round(rates.reduce((a, b) => a + b, 0), 1) : null,
    windowSeconds: round(Math.max(0, window) / 1000, 2),
    fairness: rates ? round(Math.min(...rates) / Math.max(...rates), 3) : null,
    perStreamMiBps: rates ? { min: round(Math.min(...rates), 2), median: round(median(rates), 2), max: round(Math.max(...rates), 2) } : null,
    wholeRunFairness: round(Math.min(...whole) / Math.max(...whole), 3),
    seconds: round((end - start) / 1000, 2),
    startSkew: { first: round((Math.min(...firsts) - start) / 1000, 2), median: round((median(firsts) - start) / 1000, 2), last: round((wStart - start) / 1000, 2) },
    setupSeconds: round(setupSeconds, 2),
  };
  if (rates) {
    const i = rates.indexOf(Math.min(...rates));
    run.slowest = {
      index: i,
      firstAtS: round(((firsts[i] as number) - start) / 1000, 3),
      doneAtS: round(((dones[i] as number) - start) / 1000, 3),
      windowS: [round((wStart - start) / 1000, 3), round((wEnd - start) / 1000, 3)],
      bytesAtWindow: [Math.round(bytesAt(snaps, i, wStart)), Math.round(bytesAt(snaps, i, wEnd))],
    };
  }
  if (bp) {
    run.bridgePeakRssKiB = peak;
    run.bridgeCpuSeconds = round(((procStat(bp.pid)?.cpuMs ?? 0) - cpu0) / 1000, 2);
    const sched1 = schedStat(bp.pid);
    if (sched0 && sched1) run.bridgeMainThread = { runSeconds: round((sched1.runMs - sched0.runMs) / 1000, 2), runQueueWaitSeconds: round((sched1.waitMs - sched0.waitMs) / 1000, 2) };
  }
  return run;
}

export async function streams(ctx: BenchContext, n: number, bytes: number, rounds: number, deadline: number, seriesFile?: string): Promise<StreamsResult> {
  const runs: Partial<Record<PathName, StreamsRun[]>> = {};
  const errors: Partial<Record<PathName, PathError>> = {};
  const timeoutMs = Math.max(120_000, ((n * bytes) / (5 * 2 ** 20)) * 1000);
  const { done, truncated } = await alternate(ctx.paths, rounds, deadline, async (p) => {
    if (errors[p.name]) return;
    try {
      const run = await oneRun(ctx, p.name, n, bytes, timeoutMs, seriesFile);
      (runs[p.name] ??= []).push(run);
    } catch (err) {
      errors[p.name] = errorOf(err);
      ctx.progress(`  streams ${p.name}: ${errors[p.name]?.error}`);
    }
  });
  const paths: StreamsResult['paths'] = {};
  for (const p of ctx.paths) {
    const e = errors[p.name];
    const v = runs[p.name];
    if (e) paths[p.name] = e;
    else if (v && v.length > 0) {
      const fair = v.map((x) => x.fairness).filter((x): x is number => x !== null);
      paths[p.name] = { runs: v, aggregateMiBps: round(median(v.map((x) => x.aggregateMiBps)), 1), fairness: fair.length > 0 ? round(median(fair), 3) : null };
    }
  }
  return { streams: n, bytesPerStream: bytes, rounds: done, paths, truncated };
}

/**
 * Scenario 2: keystroke-to-echo round trip in a TTY session. The client is ssh2's Client in this
 * process for every SSH path (and a WebSocket client for the direct path), so each sample is taken
 * where the echo byte arrives, with no local terminal or ssh process in between. The remote side
 * puts its terminal in raw mode and runs `dd bs=1`, which echoes every byte on its own and exits
 * after the last one (a clean end for every path; a TTY exec is never killed by a disconnect).
 * First warm-up sessions per path, not counted: a fresh bridge's keystroke path runs cold (the
 * JIT has not optimized the small-packet code yet) and its p99 stays in the milliseconds for the
 * first few thousand keystrokes (measured: p99 3.1, 3.3, 1.5, 0.37 ms over four sessions of 3,000
 * keystrokes on one bridge). Several sessions, not one long one: each new session's closures are
 * new call targets, so code optimized during one session is deoptimized at the start of the next
 * ("wrong call target", "wrong map" in `--trace-deopt`) and optimized again during it, until the
 * call sites have seen enough sessions to stop betting on one (6 deopts at the start of the second
 * session, 1 at each of the next two, with 13, 10 and 6 compilations during them); the slow
 * keystrokes of those sessions came at the same positions session after session. A bridge in
 * service has run many sessions. Then one session per path per round; rounds alternate the
 * paths; the first keystrokes of each session are not counted either.
 */
import { alternate, errorOf, type BenchContext, type PathError } from '../lib/context.ts';
import type { PathName, TtyStream } from '../lib/paths.ts';
import { latencySummary, round, type LatencySummary } from '../lib/stats.ts';

export interface LatencyResult {
  client: string;
  keystrokesPerRound: number;
  warmupPerSession: number;
  /** Uncounted warm-up sessions each path had first, and the keystrokes of each. */
  warmupSessions: number;
  warmupSessionKeystrokes: number;
  rounds: number;
  unit: 'ms';
  paths: Partial<Record<PathName, LatencySummary | PathError>>;
  /** podbridge minus direct, per percentile: what the bridge adds. */
  addedOverDirect: { p50: number; p99: number; max: number } | null;
  truncated: boolean;
}

const READY = 'READY';

async function waitFor(stream: TtyStream, text: string, timeoutMs: number, seen: { buf: string }): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!seen.buf.includes(text)) {
    if (Date.now() > until) throw new Error(`no "${text}" within ${timeoutMs} ms; got ${JSON.stringify(seen.buf.slice(-200))}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function session(stream: TtyStream, total: number, warmup: number): Promise<number[]> {
  const seen = { buf: '' };
  let expect = -1;
  let wake: (() => void) | null = null;
  stream.onData((b) => {
    if (expect >= 0) {
      if (b.includes(expect)) {
        expect = -1;
        const w = wake;
        wake = null;
        w?.();
      }
      return;
    }
    if (seen.buf.length < 4096) seen.buf += b.toString('latin1');
  });
  await waitFor(stream, READY, 30_000, seen);
  const samples: number[] = [];
  for (let i = 0; i < total; i++) {
    const ch = 97 + (i % 26);
    let timer: NodeJS.Timeout | undefined;
    const echoed = new Promise<void>((resolve, reject) => {
      wake = resolve;
      timer = setTimeout(() => reject(new Error(`keystroke ${i}: no echo within 10 s`)), 10_000);
    });
    expect = ch;
    const t0 = process.hrtime.bigint();
    stream.write(Buffer.from([ch]));
    await echoed;
    const t1 = process.hrtime.bigint();
    clearTimeout(timer);
    if (i >= warmup) samples.push(Number(t1 - t0) / 1e6);
  }
  return samples;
}

export async function latency(ctx: BenchContext, perRound: number, rounds: number, deadline: number, warmupSession = 600, warmupSessions = 5): Promise<LatencyResult> {
  const warmup = 50;
  const total = perRound + warmup;
  const command = (n: number) => `stty raw -echo; printf ${READY}; exec dd bs=1 count=${n} 2>/dev/null`;
  const byPath: Partial<Record<PathName, number[][]>> = {};
  const errors: Partial<Record<PathName, PathError>> = {};
  const warm = async (p: (typeof ctx.paths)[number]) => {
    let stream: TtyStream | null = null;
    try {
      stream = await p.tty(command(warmupSession));
      await session(stream, warmupSession, warmupSession);
      await stream.ended(10_000);
    } catch (err) {
      errors[p.name] = errorOf(err);
      ctx.progress(`  latency warm-up ${p.name}: ${errors[p.name]?.error}`);
      stream?.destroy();
    }
  };
  for (let w = 0; w < warmupSessions && warmupSession > 0; w++) {
    for (const p of ctx.paths) if (!errors[p.name]) await warm(p);
  }
  const { done, truncated } = await alternate(ctx.paths, rounds, deadline, async (p) => {
    if (errors[p.name]) return;
    let stream: TtyStream | null = null;
    try {
      stream = await p.tty(command(total));
      const samples = await session(stream, total, warmup);
      (byPath[p.name] ??= []).push(samples);
      if (!(await stream.ended(10_000))) ctx.progress(`  latency ${p.name}: session did not end by itself after the last keystroke`);
    } catch (err) {
      errors[p.name] = errorOf(err);
      ctx.progress(`  latency ${p.name}: ${errors[p.name]?.error}`);
      stream?.destroy();
    }
  });
  const paths: LatencyResult['paths'] = {};
  for (const p of ctx.paths) {
    const e = errors[p.name];
    const v = byPath[p.name];
    if (e) paths[p.name] = e;
    else if (v && v.length > 0) paths[p.name] = latencySummary(v);
  }
  const pb = paths.podbridge;
  const dr = paths.direct;
  const added =
    pb && dr && !('error' in pb) && !('error' in dr)
      ? { p50: round(pb.p50 - dr.p50, 4), p99: round(pb.p99 - dr.p99, 4), max: round(pb.max - dr.max, 4) }
      : null;
  return {
    client: 'ssh2 Client in the bench process (TCP_NODELAY on, as OpenSSH sets it for TTY sessions); direct path: ws client in the same process',
    keystrokesPerRound: perRound,
    warmupPerSession: warmup,
    warmupSessions,
    warmupSessionKeystrokes: warmupSession,
    rounds: done,
    unit: 'ms',
    paths,
    addedOverDirect: added,
    truncated,
  };
}

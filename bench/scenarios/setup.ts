/**
 * Scenario 3: session set-up.
 * - First prompt byte: from the TCP connect to the first byte of an interactive login shell with
 *   a TTY (ssh2's Client: connect, key exchange, public-key auth, pty + shell; direct: TCP, TLS,
 *   WebSocket upgrade, exec). The shell is then ended with `exit`.
 * - `ssh target true`: wall time of the OpenSSH client, from spawn to exit (direct: an exec of
 *   `true` from connect to its Status).
 * Rounds alternate the paths.
 */
import { alternate, errorOf, type BenchContext, type PathError } from '../lib/context.ts';
import type { PathName, TtyStream } from '../lib/paths.ts';
import { summarize, type Summary } from '../lib/stats.ts';

export interface SetupResult {
  rounds: number;
  unit: 'ms';
  firstByte: Partial<Record<PathName, Summary | PathError>>;
  sshTrue: Partial<Record<PathName, Summary | PathError>>;
  truncated: boolean;
}

async function firstByte(open: () => Promise<TtyStream>): Promise<number> {
  const t0 = performance.now();
  const stream = await open();
  try {
    const t1 = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no output within 30 s')), 30_000);
      stream.onData(() => {
        clearTimeout(timer);
        resolve(performance.now());
      });
    });
    stream.onData(() => undefined);
    stream.write('exit\n');
    if (!(await stream.ended(10_000))) stream.destroy();
    return t1 - t0;
  } catch (err) {
    stream.destroy();
    throw err;
  }
}

export async function setup(ctx: BenchContext, rounds: number, deadline: number): Promise<SetupResult> {
  const fb: Partial<Record<PathName, number[]>> = {};
  const tr: Partial<Record<PathName, number[]>> = {};
  const fbErr: Partial<Record<PathName, PathError>> = {};
  const trErr: Partial<Record<PathName, PathError>> = {};
  const { done, truncated } = await alternate(ctx.paths, rounds, deadline, async (p) => {
    if (!fbErr[p.name]) {
      try {
        (fb[p.name] ??= []).push(await firstByte(() => p.tty(null)));
      } catch (err) {
        fbErr[p.name] = errorOf(err);
        ctx.progress(`  first byte ${p.name}: ${fbErr[p.name]?.error}`);
      }
    }
    if (!trErr[p.name]) {
      try {
        (tr[p.name] ??= []).push(await p.runTrue());
      } catch (err) {
        trErr[p.name] = errorOf(err);
        ctx.progress(`  ssh true ${p.name}: ${trErr[p.name]?.error}`);
      }
    }
  });
  const collect = (v: Partial<Record<PathName, number[]>>, e: Partial<Record<PathName, PathError>>) => {
    const out: Partial<Record<PathName, Summary | PathError>> = {};
    for (const p of ctx.paths) {
      const err = e[p.name];
      const s = v[p.name];
      if (err) out[p.name] = err;
      else if (s && s.length > 0) out[p.name] = summarize(s, 2);
    }
    return out;
  };
  return { rounds: done, unit: 'ms', firstByte: collect(fb, fbErr), sshTrue: collect(tr, trErr), truncated };
}

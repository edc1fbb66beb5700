/** What every scenario gets: the paths, the processes to watch, the budget and the progress log. */
import type { BridgeProcess } from './bridge.ts';
import type { Cluster } from './cluster.ts';
import type { BenchPath, PathName } from './paths.ts';
import type { ClientKey } from './ssh-clients.ts';
import type { Sshd } from './sshd.ts';

export interface Budget {
  /** ms since epoch after which loops stop early and say so. */
  deadline: number;
}

export interface BenchContext {
  quick: boolean;
  paths: BenchPath[];
  bridge: BridgeProcess;
  /** The second bridge of an A/B run (--candidate), or null. */
  candidate: BridgeProcess | null;
  cluster: Cluster;
  key: ClientKey;
  sshd: { openssh: Sshd | null; recipe: Sshd | null };
  progress(line: string): void;
  /** Replaces the bridge with a fresh process (clean memory baseline for the scale scenario). */
  restartBridge(opts?: { profile?: boolean }): Promise<BridgeProcess>;
  workDir: string;
  profileDir: string | null;
}

/** The bridge process behind a path, for the paths that have one. */
export function bridgeOf(ctx: BenchContext, name: PathName): BridgeProcess | null {
  return name === 'podbridge' ? ctx.bridge : name === 'candidate' ? ctx.candidate : null;
}

/** A B C, B C A, C A B ...: every path runs once per round, starting places rotate. */
export function rotated<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/**
 * Runs `each` for every path in every round, the starting place rotating (A B A B …), until
 * `rounds` are done or `deadline` (ms since epoch) passes; says how many rounds ran.
 */
export async function alternate<T>(
  paths: readonly T[],
  rounds: number,
  deadline: number,
  each: (path: T) => Promise<void>,
): Promise<{ done: number; truncated: boolean }> {
  let done = 0;
  for (let r = 0; r < rounds; r++) {
    if (Date.now() > deadline) return { done, truncated: true };
    for (const p of rotated(paths, r)) await each(p);
    done++;
  }
  return { done, truncated: false };
}

export interface PathError {
  error: string;
}

export function errorOf(err: unknown): PathError {
  return { error: (err instanceof Error ? err.message : String(err)).split('\n')[0]?.slice(0, 500) ?? 'unknown error' };
}

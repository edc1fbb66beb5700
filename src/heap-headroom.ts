/**
 * A floor under the old generation's growth, so a transfer on a small heap does not run a full
 * garbage collection every 100 ms.
 *
 * After each full collection V8 sets the next one's trigger at the live heap times a growing
 * factor it picks from how fast collections have been (about 1.1–1.5 for a bridge, whose
 * collections are quick), and starts marking again as soon as the room left is within its
 * young generation's reach. For the bridge's 20 MB start-up heap that room is about 10 MB, less
 * than what a busy transfer promotes in a fraction of a second (packets and frames that wait in
 * a queue through two scavenges): V8 then marks the whole heap over and over, 80–100 times per
 * GiB moved (bench, `--trace-gc` and `--trace-incremental-marking`: "Start (allocation limit):
 * 20MB / 30MB / 10MB"). The bridge spent half its CPU per GiB so, and concurrent marking took
 * the second of the machine's two cores from the client and the pod.
 *
 * `--heap-growing-percent` replaces V8's factor; V8 reads it at every limit computation, so it
 * can follow the live heap: after every full collection we set it to give HEADROOM of room
 * (capped at MAX_PERCENT), and hand the choice back to V8 once the live heap is large enough
 * that its own factor gives that room (thousands of sessions), so big heaps grow as V8 decides.
 */
import { constants, PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';

/** Room above the live heap before the next full collection: 64 MiB, V8's own step for
 *  external (Buffer) memory, measured to stop the repeated marking in both transfer directions
 *  (docs/benchmarks.md). */
export const HEADROOM_BYTES = 64 * 1024 * 1024;
/** At most 4× the live heap (a 16 MiB heap grows to 64 MiB at most before it is collected). */
export const MAX_PERCENT = 300;
/** Below this V8's own factor gives as much room; the flag goes back to 0 (V8 decides). */
export const MIN_PERCENT = 50;

/** The `--heap-growing-percent` for a live heap of `liveBytes`: 0 means V8's own factor. */
export function growingPercent(liveBytes: number): number {
  const percent = Math.ceil((HEADROOM_BYTES * 100) / Math.max(liveBytes, 1));
  if (percent < MIN_PERCENT) return 0;
  return Math.min(percent, MAX_PERCENT);
}

let observer: PerformanceObserver | null = null;
let current = -1;

function apply(): void {
  const percent = growingPercent(v8.getHeapStatistics().used_heap_size);
  if (percent === current) return;
  current = percent;
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}

/** Starts following the live heap (once per process; a second call does nothing). */
export function keepHeapHeadroom(): void {
  if (observer) return;
  apply();
  // A 'gc' entry arrives after the collection; the heap then holds what survived it.
  observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        apply();
        return;
      }
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** The percent last set (read by test/unit/heap-headroom.test.ts); -1 before keepHeapHeadroom. */
export function heapGrowingPercent(): number {
  return current;
}

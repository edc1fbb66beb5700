/** `45 s`, `12 min`, `2 h 30 min`: how people read a limit. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.floor(min / 60);
  return min % 60 === 0 ? `${h} h` : `${h} h ${min % 60} min`;
}

/** A limit with an advance warning, on one timer at a time: the warning's, then (once it has
 *  fired) the limit's. Sessions and connections wait on such limits for hours, thousands of them
 *  on an idle bridge; two pending Timeouts each cost ~400 bytes more per session. */
export class Deadline {
  private timer: NodeJS.Timeout;

  /** `onWarning` runs `warningMs` before `onLimit` (not at all when the limit is not longer than
   *  the warning, or the warning is 0). */
  constructor(limitMs: number, warningMs: number, onWarning: () => void, onLimit: () => void) {
    if (limitMs > warningMs && warningMs > 0) {
      this.timer = setTimeout(() => {
        this.timer = setTimeout(onLimit, warningMs);
        onWarning();
      }, limitMs - warningMs);
    } else {
      this.timer = setTimeout(onLimit, limitMs);
    }
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

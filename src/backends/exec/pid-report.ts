/**
 * Reads the wrapper's PID report (command.ts: `ESC ] podbridge-pid ; PID ; START BEL`,
 * the first bytes the wrapper writes on stdout) off the front of a stdout stream, across chunk
 * boundaries, in bounded memory. Protocol-neutral: any backend that runs the wrapper uses it.
 */
import type { Leader } from './control/control-script.ts';
import { PID_REPORT_END, PID_REPORT_PREFIX } from './command.ts';

const PREFIX = Buffer.from(PID_REPORT_PREFIX, 'latin1');
const END_BYTE = PID_REPORT_END.charCodeAt(0);
/** Prefix, a PID, a start time in clock ticks, the terminator: never near this long. */
const MAX_BYTES = PREFIX.length + 48;

export type PidReportResult =
  | { done: false }
  /** `report`: whether the bytes were a report at all (false: something else spoke first, so the
   *  wrapper never ran). `leader` is null for a malformed report. `rest` belongs to the user. */
  | { done: true; report: boolean; leader: Leader | null; rest: Buffer };

export class PidReportReader {
  private buf: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): PidReportResult {
    if (chunk.length === 0) return { done: false };
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const buf = this.buf;
    const n = Math.min(buf.length, PREFIX.length);
    if (!buf.subarray(0, n).equals(PREFIX.subarray(0, n))) return this.finish(false, null, buf);
    if (buf.length < PREFIX.length) return { done: false };
    const end = buf.indexOf(END_BYTE, PREFIX.length);
    if (end < 0) return buf.length > MAX_BYTES ? this.finish(false, null, buf) : { done: false };
    const m = /^([1-9][0-9]{0,9});([0-9]{0,20})$/.exec(buf.subarray(PREFIX.length, end).toString('latin1'));
    const leader: Leader | null = m === null ? null : { pid: Number(m[1]), startTime: m[2] === '' || m[2] === undefined ? null : m[2] };
    // A malformed report is still ours: drop it rather than show it.
    return this.finish(true, leader, buf.subarray(end + 1));
  }

  /** What was held when the stream ended mid-report (the start of our report, cut off). */
  get pending(): Buffer {
    return this.buf;
  }

  private finish(report: boolean, leader: Leader | null, rest: Buffer): PidReportResult {
    this.buf = Buffer.alloc(0);
    return { done: true, report, leader, rest };
  }
}

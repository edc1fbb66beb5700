/**
 * CPU accounting of a whole path, per unit of work: every process that moves the bytes, read from
 * /proc. Exited processes are counted through their parents' cutime/cstime (a parent's share of
 * children it has waited for), so short-lived ssh clients, sshd sessions, kubectl and the pod's
 * `head`/`cat` are all included:
 * - client: this bench process itself (the direct path's client, ssh2) and its waited-for
 *   children (OpenSSH clients, the upload's `head`);
 * - bridge: the podbridge process (and the candidate's);
 * - sshd: the sshd listeners' waited-for children (per-connection sshd processes, the shells and
 *   kubectl below them);
 * - apiserver: the fixture process; container: its waited-for children (the pod's processes).
 */
import type { BenchContext } from './context.ts';
import { procStat } from './proc.ts';
import { round } from './stats.ts';

export type CpuPart = 'client' | 'bridge' | 'candidate' | 'sshd' | 'apiserver' | 'container';
export type CpuReading = Record<CpuPart, number>;

function self(): { cpuMs: number; childCpuMs: number } {
  const u = process.cpuUsage();
  const st = procStat(process.pid);
  return { cpuMs: (u.user + u.system) / 1000, childCpuMs: st?.childCpuMs ?? 0 };
}

export function readCpu(ctx: BenchContext): CpuReading {
  const me = self();
  const b = procStat(ctx.bridge.pid);
  const c = ctx.candidate ? procStat(ctx.candidate.pid) : null;
  const f = ctx.cluster.pid !== null ? procStat(ctx.cluster.pid) : null;
  let sshd = 0;
  for (const s of [ctx.sshd.openssh, ctx.sshd.recipe]) {
    if (s) sshd += procStat(s.pid)?.childCpuMs ?? 0;
  }
  return {
    client: me.cpuMs + me.childCpuMs,
    bridge: b?.cpuMs ?? 0,
    candidate: c?.cpuMs ?? 0,
    sshd,
    apiserver: f?.cpuMs ?? 0,
    container: f?.childCpuMs ?? 0,
  };
}

/** CPU seconds per `unit` between two readings, by part, with the total. */
export function cpuPer(a: CpuReading, b: CpuReading, units: number): Record<CpuPart | 'total', number> {
  const out = {} as Record<CpuPart | 'total', number>;
  let total = 0;
  for (const k of Object.keys(a) as CpuPart[]) {
    const v = Math.max(0, b[k] - a[k]) / 1000 / units;
    out[k] = round(v, 3);
    total += v;
  }
  out.total = round(total, 3);
  return out;
}

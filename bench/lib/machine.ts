/** The machine and software a run was measured on, for the results file. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  openssh: string | null;
  kubectl: string | null;
  packages: Record<string, string | null>;
  /** Commit of the tree that was measured, with "+dirty" when it had local changes. */
  commit: string | null;
  loadAverage: number[];
}

/** stdout, else stderr (`ssh -V` prints there), of a command that succeeded; null otherwise. */
function quiet(cmd: string, args: string[], cwd?: string): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd, timeout: 10_000 });
  if (r.error || r.status !== 0) return null;
  const out = r.stdout.trim() || r.stderr.trim();
  return out === '' ? null : out;
}

function packageVersion(root: string, name: string): string | null {
  try {
    return (JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string }).version ?? null;
  } catch {
    return null;
  }
}

/** Jiffies the whole machine spent busy and in total (from /proc/stat), to tell a quiet run. */
export function cpuJiffies(): { busy: number; total: number } {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** Waits (at most `maxSeconds`) until the 1-minute load average is below `below`. */
export async function waitQuiet(below: number, maxSeconds: number, log: (l: string) => void): Promise<number> {
  const until = Date.now() + maxSeconds * 1000;
  let said = false;
  while (os.loadavg()[0]! >= below && Date.now() < until) {
    if (!said) log(`waiting up to ${maxSeconds} s for the machine to quieten (load ${os.loadavg()[0]?.toFixed(2)}, other work is running)`);
    said = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
  return os.loadavg()[0] ?? 0;
}

export function machineInfo(root: string): MachineInfo {
  const cpus = os.cpus();
  const sshVersion = quiet('ssh', ['-V']);
  const kubectl = quiet('kubectl', ['version', '--client']);
  const head = quiet('git', ['rev-parse', '--short', 'HEAD'], root);
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', cwd: root }).stdout?.trim();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    openssh: sshVersion,
    kubectl: kubectl?.split('\n')[0] ?? null,
    packages: Object.fromEntries(['ssh2', 'ws', 'node-pty', '@kubernetes/client-node', 'pino'].map((n) => [n, packageVersion(root, n)])),
    commit: head === null ? null : `${head}${dirty ? '+dirty' : ''}`,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

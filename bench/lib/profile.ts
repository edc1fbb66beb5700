/**
 * Summaries of the bridge's V8 CPU profiles (`--cpu-prof`) and heap snapshots
 * (`--heapsnapshot-signal`): where the time and the memory go, grouped by function and by
 * module (ssh2, ws, node's TLS, our src/ files), small enough for the results file.
 */
import fs from 'node:fs';
import { round } from './stats.ts';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface CpuSummary {
  file: string;
  totalMs: number;
  /** Share of the sampled time that was not idle. */
  busyPercent: number;
  byModule: Array<{ module: string; selfPercentOfBusy: number }>;
  topFunctions: Array<{ fn: string; where: string; selfPercentOfBusy: number }>;
}

/** node_modules/<pkg>, src/<file>, node:<internal>, or a V8 pseudo-frame. */
export function moduleOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1] as string;
  const src = /\/(src|bench|test)\/(.+)$/.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:').replace(/\/.*$/, '');
  return url;
}

/**
 * `window`: only samples between these CLOCK_MONOTONIC times in µs (process.hrtime.bigint() / 1000
 * in any process on the machine; V8 stamps its samples with the same clock), so start-up and
 * module loading stay out of a profile of steady work.
 */
export function summarizeCpuProfile(file: string, top = 25, window?: { fromUs: number; toUs: number }): CpuSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    const id = prof.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  let total = 0;
  let idle = 0;
  const fns = new Map<string, { fn: string; where: string; us: number }>();
  const mods = new Map<string, number>();
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    total += us;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)' || fn === '(program)') {
      if (fn === '(idle)') idle += us;
    }
    if (fn === '(idle)') continue;
    const url = n.callFrame.url;
    const where = url === '' ? '' : `${moduleOf(url, fn)}:${n.callFrame.lineNumber + 1}`;
    const key = `${fn}@${where}`;
    const e = fns.get(key) ?? { fn, where, us: 0 };
    e.us += us;
    fns.set(key, e);
    const mod = moduleOf(url, fn);
    mods.set(mod, (mods.get(mod) ?? 0) + us);
  }
  const busy = total - idle;
  const share = (us: number) => round((us / Math.max(1, busy)) * 100, 1);
  return {
    file,
    totalMs: round(total / 1000, 0),
    busyPercent: round((busy / Math.max(1, total)) * 100, 1),
    byModule: [...mods.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([module, us]) => ({ module, selfPercentOfBusy: share(us) })),
    topFunctions: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => ({ fn: e.fn, where: e.where, selfPercentOfBusy: share(e.us) })),
  };
}

interface HeapSnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapSummary {
  baseFile: string;
  file: string;
  sessions: number;
  /** Growth of the V8 heap (self sizes of all objects) from 0 to `sessions` idle sessions;
   *  native memory (OpenSSL, socket buffers, malloc) is not in a heap snapshot. */
  heapGrowthBytes: number;
  heapGrowthPerSession: number;
  top: Array<{ type: string; name: string; countPerSession: number; perSessionBytes: number }>;
}

interface Group {
  type: string;
  name: string;
  count: number;
  bytes: number;
}

/**
 * Self sizes grouped by type and name (a constructor for objects); with `byRetainer`, also by the
 * name of the first object that holds each node through a strong edge, which tells whose arrays,
 * strings and buffers they are (e.g. "array (object properties) <- ServerChannel").
 */
function heapGroups(file: string, byRetainer: boolean): { total: number; groups: Map<string, Group> } {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as HeapSnapshotFile;
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const width = fields.length;
  const fType = fields.indexOf('type');
  const fName = fields.indexOf('name');
  const fSize = fields.indexOf('self_size');
  const fEdges = fields.indexOf('edge_count');
  const nodeCount = snap.nodes.length / width;
  const nameOf = (n: number): string => {
    const type = types[snap.nodes[n * width + fType] as number] ?? '?';
    let name = snap.strings[snap.nodes[n * width + fName] as number] ?? '?';
    if (type === 'closure') name = `${name}()`;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number' || type === 'code') name = type;
    return name.length > 60 ? `${name.slice(0, 57)}...` : name;
  };
  const retainer = new Int32Array(byRetainer ? nodeCount : 0).fill(-1);
  if (byRetainer) {
    const ef = meta.edge_fields;
    const ew = ef.length;
    const eType = ef.indexOf('type');
    const eTo = ef.indexOf('to_node');
    const edgeTypes = meta.edge_types[0];
    const weak = edgeTypes.indexOf('weak');
    const shortcut = edgeTypes.indexOf('shortcut');
    let e = 0;
    for (let n = 0; n < nodeCount; n++) {
      const count = snap.nodes[n * width + fEdges] as number;
      const ntype = types[snap.nodes[n * width + fType] as number];
      for (let k = 0; k < count; k++, e += ew) {
        const et = snap.edges[e + eType] as number;
        if (et === weak || et === shortcut) continue;
        const to = (snap.edges[e + eTo] as number) / width;
        // Prefer a real object as the retainer over V8's synthetic roots and system structures.
        if (retainer[to] === -1 && (ntype === 'object' || ntype === 'closure' || ntype === 'native')) retainer[to] = n;
      }
    }
  }
  const groups = new Map<string, Group>();
  let total = 0;
  for (let n = 0; n < nodeCount; n++) {
    const type = types[snap.nodes[n * width + fType] as number] ?? '?';
    const size = snap.nodes[n * width + fSize] as number;
    total += size;
    let name = nameOf(n);
    if (byRetainer) {
      const r = retainer[n] as number;
      name = `${name} <- ${r >= 0 ? nameOf(r) : '(system)'}`;
    }
    const key = `${type}\u0000${name}`;
    const g = groups.get(key) ?? { type, name, count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(key, g);
  }
  return { total, groups };
}

/** What `sessions` idle sessions added to the heap, by object type: snapshot at N minus at 0. */
export function summarizeHeapGrowth(baseFile: string, file: string, sessions: number, top = 30, byRetainer = true): HeapSummary {
  const base = heapGroups(baseFile, byRetainer);
  const now = heapGroups(file, byRetainer);
  const n = Math.max(1, sessions);
  const diffs = [...now.groups.entries()].map(([k, g]) => {
    const b = base.groups.get(k);
    return { type: g.type, name: g.name, count: g.count - (b?.count ?? 0), bytes: g.bytes - (b?.bytes ?? 0) };
  });
  return {
    baseFile,
    file,
    sessions,
    heapGrowthBytes: now.total - base.total,
    heapGrowthPerSession: Math.round((now.total - base.total) / n),
    top: diffs
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, top)
      .map((g) => ({ type: g.type, name: g.name, countPerSession: round(g.count / n, 2), perSessionBytes: Math.round(g.bytes / n) })),
  };
}

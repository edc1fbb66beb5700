/**
 * `npm run bench [-- --quick] [-- --kubeconfig FILE --target NS/POD[/CONTAINER]]`
 *
 * Measures podbridge against the direct WebSocket exec path, OpenSSH's sshd with a local shell and
 * the bastion recipe (sshd ForceCommand kubectl exec), side by side in one run, alternating the
 * paths round by round. Writes bench/results/<date>.json and regenerates the tables of
 * docs/benchmarks.md. `--profile` instead runs the profiling passes (CPU profiles of the bridge
 * during transfers and keystrokes, a heap snapshot under many idle sessions) and prints summaries.
 * Everything runs on loopback; every loop is bounded in count and in time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startBridgeProcess, type BridgeProcess } from './lib/bridge.ts';
import { loginName, parsePodTarget, startFixture, useKubeconfig, type Cluster } from './lib/cluster.ts';
import type { BenchContext } from './lib/context.ts';
import { directApi } from './lib/direct.ts';
import { cpuJiffies, machineInfo, waitQuiet } from './lib/machine.ts';
import { directPath, PATH_LABELS, sshPath, type BenchPath } from './lib/paths.ts';
import { ensureNofile, killAllChildrenSync, run, which } from './lib/proc.ts';
import { summarizeCpuProfile, summarizeHeapGrowth, type CpuSummary, type HeapSummary } from './lib/profile.ts';
import { fileName, markdown, updateDoc, verdicts, type Results } from './lib/report.ts';
import { makeClientKey, setClientOptions } from './lib/ssh-clients.ts';
import { ensureSshd, kubectlAvailability, startSshd, writeRecipeScript, type Availability, type Sshd } from './lib/sshd.ts';
import { dockerScenario } from './scenarios/docker.ts';
import { forwardScenario } from './scenarios/forward.ts';
import { latency } from './scenarios/latency.ts';
import { scaleBridge, scaleSshdTree } from './scenarios/scale.ts';
import { setup } from './scenarios/setup.ts';
import { streams } from './scenarios/streams.ts';
import { throughput } from './scenarios/throughput.ts';
import { DOC_TEMPLATE } from './lib/doc-template.ts';
import { REPO } from '../test/helpers/paths.ts';

/** The checkout (results and docs are written there), wherever this compiled file runs from. */
const ROOT = REPO;
const SCENARIOS = ['download', 'upload', 'latency', 'setup', 'streams', 'scale', 'docker', 'forward'] as const;
type Scenario = (typeof SCENARIOS)[number];

const USAGE = `npm run bench -- [options]
  --quick                       small sizes and fewer rounds (under 2 minutes)
  --kubeconfig FILE             a real cluster instead of the fake kube-apiserver fixture
  --target NS/POD[/CONTAINER]   the pod to use with --kubeconfig
  --only LIST                   scenarios to run: ${SCENARIOS.join(',')}
  --paths LIST                  paths to measure (default all): podbridge,direct,direct-spdy,openssh,recipe
                                (podbridge always runs; a quick A/B of two paths)
  --rounds N                    rounds of every alternating scenario
  --budget SECONDS              how long every scenario may start new rounds (default: per scenario)
  --levels LIST                 idle-session steps (default 100,500,1000,2000)
  --sessions-per-connection N   idle sessions per SSH connection (default 1)
  --profile                     profiling passes on podbridge alone (CPU profiles, heap snapshot)
  --profile-dir DIR             where profiles go (default: a temp directory)
  --bridge-cpu-prof DIR         a normal run with a V8 CPU profile of the first podbridge process
                                (written when it stops)
  --streams-series FILE         append every streams run's per-stream byte counts over time (JSON lines)
  --out DIR                     results directory (default bench/results)
  --docs / --no-docs            regenerate docs/benchmarks.md (default: full runs only)
  --keep                        keep the temp directory (keys, configs, logs)
  --render FILE                 only regenerate docs/benchmarks.md from a results file
  --bridge-root DIR             run podbridge from another checkout (the fixture and the bench
                                stay this tree's)
  --cipher NAME                 OpenSSH clients ask for this cipher (default: the client's own
                                choice, chacha20-poly1305@openssh.com)
  --wait-quiet SECONDS          first wait (at most this long) for the load average to drop below 1
  --candidate DIR               A/B in one run: also run podbridge from another checkout (a copy
                                with a change in src/ and node_modules linked) as path "candidate",
                                alternated with the others
  --candidate-env K=V[,K=V]     environment for the candidate (alone: this tree with that env)`;

interface Params {
  downloadBytes: number;
  uploadBytes: number;
  throughputRounds: number;
  latencyPerRound: number;
  latencyRounds: number;
  setupRounds: number;
  streams: number;
  streamBytes: number;
  streamRounds: number;
  levels: number[];
  sessionsPerConnection: number;
  concurrency: number;
  idleWindowMs: number;
  treeSessions: number;
  /** Seconds each scenario may start new rounds for. */
  budgets: Record<Scenario, number>;
}

const MiB = 2 ** 20;

function params(quick: boolean): Params {
  if (quick) {
    return {
      downloadBytes: 64 * MiB,
      uploadBytes: 32 * MiB,
      throughputRounds: 3,
      latencyPerRound: 500,
      latencyRounds: 4,
      setupRounds: 5,
      streams: 50,
      streamBytes: 8 * MiB,
      streamRounds: 1,
      levels: [100, 200],
      sessionsPerConnection: 1,
      concurrency: 16,
      idleWindowMs: 2000,
      treeSessions: 5,
      budgets: { download: 15, upload: 10, latency: 15, setup: 12, streams: 15, scale: 30, docker: 40, forward: 30 },
    };
  }
  return {
    downloadBytes: 1024 * MiB,
    uploadBytes: 256 * MiB,
    throughputRounds: 5,
    latencyPerRound: 1000,
    latencyRounds: 3,
    setupRounds: 20,
    streams: 50,
    streamBytes: 16 * MiB,
    streamRounds: 2,
    levels: [100, 500, 1000, 2000],
    sessionsPerConnection: 1,
    concurrency: 16,
    idleWindowMs: 5000,
    treeSessions: 20,
    budgets: { download: 110, upload: 50, latency: 40, setup: 50, streams: 60, scale: 180, docker: 90, forward: 60 },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      kubeconfig: { type: 'string' },
      target: { type: 'string' },
      only: { type: 'string' },
      paths: { type: 'string' },
      rounds: { type: 'string' },
      budget: { type: 'string' },
      levels: { type: 'string' },
      'sessions-per-connection': { type: 'string' },
      profile: { type: 'boolean', default: false },
      'profile-dir': { type: 'string' },
      'bridge-cpu-prof': { type: 'string' },
      'streams-series': { type: 'string' },
      out: { type: 'string' },
      docs: { type: 'boolean' },
      'no-docs': { type: 'boolean' },
      keep: { type: 'boolean', default: false },
      'bridge-root': { type: 'string' },
      candidate: { type: 'string' },
      'candidate-env': { type: 'string' },
      'wait-quiet': { type: 'string' },
      cipher: { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (values.render) {
    const r = JSON.parse(fs.readFileSync(values.render, 'utf8')) as Results;
    r.verdicts = verdicts(r);
    updateDoc(path.join(ROOT, 'docs', 'benchmarks.md'), markdown(r), DOC_TEMPLATE);
    process.stderr.write(`docs/benchmarks.md regenerated from ${values.render}\n`);
    return;
  }
  const started = new Date();
  const t0 = performance.now();
  const quick = values.quick === true;
  const P = params(quick);
  if (values.rounds) P.throughputRounds = P.setupRounds = P.streamRounds = P.latencyRounds = positive(values.rounds, '--rounds');
  if (values.budget) {
    const b = positive(values.budget, '--budget');
    for (const k of SCENARIOS) P.budgets[k] = b;
  }
  if (values.levels) P.levels = values.levels.split(',').map((v) => positive(v, '--levels')).sort((a, b) => a - b);
  if (values['sessions-per-connection']) P.sessionsPerConnection = positive(values['sessions-per-connection'], '--sessions-per-connection');
  const only = new Set<Scenario>(values.only ? (values.only.split(',').map((s) => s.trim()) as Scenario[]) : SCENARIOS);
  for (const s of only) if (!SCENARIOS.includes(s)) throw new Error(`--only: unknown scenario "${s}" (${SCENARIOS.join(', ')})`);
  if (values.kubeconfig && !values.target) throw new Error('--kubeconfig needs --target NAMESPACE/POD[/CONTAINER]');

  const progress = (line: string) => process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${line}\n`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'podbridge-bench-'));
  const stops: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
    if (!values.keep) fs.rmSync(work, { recursive: true, force: true });
  };
  const onSignal = () => {
    killAllChildrenSync();
    if (!values.keep) fs.rmSync(work, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    // ---- prerequisites
    if (!which('ssh') || !which('ssh-keygen')) {
      if (process.getuid?.() === 0 && which('apt-get')) {
        progress('installing openssh-client with apt-get');
        await run('apt-get', ['install', '-y', '--no-install-recommends', 'openssh-client'], { timeoutMs: 300_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      }
      if (!which('ssh')) throw new Error('the OpenSSH client (ssh, ssh-keygen) is needed: apt-get install openssh-client');
    }
    const topLevel = Math.max(...P.levels);
    // Per session: the bench's SSH socket; the bridge's SSH and exec sockets (children inherit).
    const nofile = ensureNofile(topLevel * 3 + 4096);
    if (nofile.note) progress(`file descriptors: ${nofile.note}`);

    if (values['wait-quiet']) await waitQuiet(1, positive(values['wait-quiet'], '--wait-quiet'), progress);
    const loadStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
    const jiffiesStart = cpuJiffies();
    if ((loadStart[0] ?? 0) > 1.5) progress(`note: load average ${loadStart[0]} — other work is running; absolute figures will be low, ratios (alternating rounds) hold better`);
    if (values.cipher) setClientOptions(['-c', values.cipher]);
    const key = makeClientKey('bench@podbridge', 'ed25519', path.join(work, 'client'));
    const sshdAvail = await ensureSshd(progress);
    const kubectlAvail = kubectlAvailability();

    // ---- cluster
    let cluster: Cluster;
    if (values.kubeconfig) {
      const { loadKubeconfig } = await import('../src/backends/kubernetes/api/kubeconfig.ts');
      const loaded = loadKubeconfig({ kubeconfig: values.kubeconfig });
      cluster = useKubeconfig(path.resolve(values.kubeconfig), loaded.server, parsePodTarget(values.target ?? ''), work);
    } else {
      progress('starting the fake kube-apiserver');
      cluster = await startFixture(ROOT, path.join(work, 'cluster'));
    }
    stops.push(() => cluster.stop());
    const t = cluster.target;

    // ---- podbridge (a child process; replaced by a fresh one for the scale scenario)
    const bridgeRoot = values['bridge-root'] ? path.resolve(values['bridge-root']) : ROOT;
    let bridgeN = 0;
    const launchBridge = async (opts: { cpuProf?: string; heap?: boolean; root?: string; inspector?: boolean; env?: Record<string, string> } = {}): Promise<BridgeProcess> => {
      const b = await startBridgeProcess({
        root: opts.root ?? bridgeRoot,
        dir: path.join(work, `bridge-${++bridgeN}`),
        kubeconfig: cluster.kubeconfig,
        publicKeyLine: key.publicLine,
        cpuProfDir: opts.cpuProf,
        heapSnapshots: opts.heap,
        inspector: opts.inspector,
        env: opts.env,
      });
      return b;
    };
    progress('starting podbridge');
    // The inspector lets the throughput scenario force a full GC in both bridges after its
    // warm-up, so each starts the counted rounds with a heap limit set from the same live heap.
    let bridge = await launchBridge({ cpuProf: values['bridge-cpu-prof'] ? path.resolve(values['bridge-cpu-prof']) : undefined, inspector: true });
    const bridgeEndpoint = () => ({ port: bridge.port, user: loginName(t) });
    const candidateEnv = values['candidate-env'] ? parseEnv(values['candidate-env']) : undefined;
    const candidateRoot = values.candidate ? path.resolve(values.candidate) : candidateEnv ? ROOT : null;
    let candidate: BridgeProcess | null = null;
    if (candidateRoot) {
      progress(`starting the candidate podbridge from ${candidateRoot}${candidateEnv ? ` with ${JSON.stringify(candidateEnv)}` : ''}`);
      candidate = await launchBridge({ root: candidateRoot, env: candidateEnv, inspector: true });
    }

    // ---- baselines
    const availability: Record<string, Availability> = { openssh: sshdAvail, recipe: sshdAvail.available ? kubectlAvail : { ...sshdAvail } };
    let opensshd: Sshd | null = null;
    let recipeSshd: Sshd | null = null;
    if (sshdAvail.available && sshdAvail.path && !values.profile) {
      try {
        opensshd = await startSshd({ sshdPath: sshdAvail.path, dir: path.join(work, 'sshd-plain'), publicKeyLine: key.publicLine });
        const s = opensshd;
        stops.push(() => s.stop());
      } catch (err) {
        availability.openssh = { available: false, note: (err as Error).message, path: null };
      }
      if (kubectlAvail.available && kubectlAvail.path) {
        try {
          const script = writeRecipeScript(path.join(work, 'recipe'), cluster, kubectlAvail.path);
          recipeSshd = await startSshd({ sshdPath: sshdAvail.path, dir: path.join(work, 'sshd-recipe'), publicKeyLine: key.publicLine, forceCommand: script });
          const s = recipeSshd;
          stops.push(() => s.stop());
        } catch (err) {
          availability.recipe = { available: false, note: (err as Error).message, path: null };
        }
      }
    }
    if (!availability.openssh?.available) progress(`OpenSSH baseline unavailable: ${availability.openssh?.note}`);
    if (!availability.recipe?.available) progress(`recipe baseline unavailable: ${availability.recipe?.note}`);

    const paths: BenchPath[] = [];
    const pb = sshPath('podbridge', bridgeEndpoint(), key);
    paths.push(pb);
    if (candidate) paths.push(sshPath('candidate', { port: candidate.port, user: loginName(t) }, key));
    paths.push(directPath(directApi(cluster.kubeconfig, t)));
    paths.push(directPath(directApi(cluster.kubeconfig, t), 'spdy'));
    if (opensshd) paths.push(sshPath('openssh', { port: opensshd.port, user: opensshd.user }, key));
    if (recipeSshd) paths.push(sshPath('recipe', { port: recipeSshd.port, user: recipeSshd.user }, key));
    if (values.paths) {
      const wanted = new Set(values.paths.split(',').map((x) => x.trim()));
      for (const w of wanted) if (!(w in PATH_LABELS)) throw new Error(`--paths: unknown path "${w}" (${Object.keys(PATH_LABELS).join(', ')})`);
      for (const p of [...paths]) if (p.name !== 'podbridge' && p.name !== 'candidate' && !wanted.has(p.name)) paths.splice(paths.indexOf(p), 1);
    }

    const ctx: BenchContext = {
      quick,
      paths,
      get bridge() {
        return bridge;
      },
      get candidate() {
        return candidate;
      },
      cluster,
      key,
      sshd: { openssh: opensshd, recipe: recipeSshd },
      progress,
      restartBridge: async (o = {}) => {
        await bridge.stop();
        bridge = await launchBridge({ heap: o.profile, inspector: true });
        const fresh = sshPath('podbridge', bridgeEndpoint(), key);
        paths[paths.findIndex((p) => p.name === 'podbridge')] = fresh;
        return bridge;
      },
      workDir: work,
      profileDir: values['profile-dir'] ?? null,
    };
    stops.push(() => bridge.stop());
    stops.push(async () => {
      await candidate?.stop();
    });

    if (values.profile) {
      const profileDir = values['profile-dir'] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'podbridge-profiles-'));
      await profilePasses(ctx, P, profileDir, launchBridge, (b) => (bridge = b), values.out, only);
      return;
    }

    // ---- integrity and warm-up: every byte both ways, once per path
    progress(`checking every path moves every byte (${paths.map((p) => p.name).join(', ')})`);
    for (const p of [...paths]) {
      try {
        await p.verify(4 * MiB);
      } catch (err) {
        progress(`  ${p.name} failed the integrity check and is left out: ${(err as Error).message}`);
        availability[p.name] = { available: false, note: `failed the integrity check: ${(err as Error).message.split('\n')[0]?.slice(0, 300) ?? ''}`, path: null };
        paths.splice(paths.indexOf(p), 1);
        if (p.name === 'podbridge') throw err;
      }
    }

    const results: Results = {
      schema: 1,
      startedAt: started.toISOString(),
      finishedAt: '',
      durationSeconds: 0,
      mode: quick ? 'quick' : 'full',
      argv: process.argv.slice(2),
      machine: machineInfo(ROOT),
      cluster: { kind: cluster.kind, server: cluster.server, target: `${t.namespace}/${t.pod}${t.container ? `/${t.container}` : ''}` },
      availability: Object.fromEntries(Object.entries(availability).map(([k, a]) => [k, { available: a.available, note: a.note }])),
      limits: { nofileSoft: nofile.soft, nofileHard: nofile.hard, note: nofile.note },
      contention: { loadStart, loadEnd: [], machineBusyPercent: 0 },
      parameters: { ...P, paths: paths.map((p) => p.name), bridgeRoot, candidateRoot, candidateEnv },
      bridgeLog: { counts: {}, lastErrors: [] },
      verdicts: [],
    };
    const deadlineFor = (s: Scenario) => Date.now() + P.budgets[s] * 1000;
    const fmtS = (n: number) => `${(n / MiB).toFixed(0)} MiB`;

    if (only.has('download')) {
      progress(`download: ${fmtS(P.downloadBytes)} × ${P.throughputRounds} rounds`);
      results.download = await throughput(ctx, 'download', P.downloadBytes, P.throughputRounds, deadlineFor('download'));
      progress(`download done: ${medians(results.download.paths, 'MiB/s')}`);
    }
    if (only.has('upload')) {
      progress(`upload: ${fmtS(P.uploadBytes)} × ${P.throughputRounds} rounds`);
      results.upload = await throughput(ctx, 'upload', P.uploadBytes, P.throughputRounds, deadlineFor('upload'));
      progress(`upload done: ${medians(results.upload.paths, 'MiB/s')}`);
    }
    if (only.has('latency')) {
      progress(`latency: ${P.latencyPerRound} keystrokes × ${P.latencyRounds} rounds per path`);
      results.latency = await latency(ctx, P.latencyPerRound, P.latencyRounds, deadlineFor('latency'), quick ? 300 : 600);
      progress(`latency done: ${Object.entries(results.latency.paths).map(([k, v]) => `${k} ${'error' in v ? 'failed' : `p50 ${v.p50} p99 ${v.p99} ms`}`).join(', ')}`);
    }
    if (only.has('setup')) {
      progress(`setup: ${P.setupRounds} rounds (first prompt byte, ssh true)`);
      results.setup = await setup(ctx, P.setupRounds, deadlineFor('setup'));
      progress(`setup done: first byte ${medians(results.setup.firstByte, 'ms')}; true ${medians(results.setup.sshTrue, 'ms')}`);
    }
    if (only.has('streams')) {
      progress(`streams: ${P.streams} at once × ${fmtS(P.streamBytes)}, ${P.streamRounds} round(s)`);
      results.streams = await streams(ctx, P.streams, P.streamBytes, P.streamRounds, deadlineFor('streams'), values['streams-series']);
      progress(`streams done: ${Object.entries(results.streams.paths).map(([k, v]) => `${k} ${'error' in v ? 'failed' : `${v.aggregateMiBps} MiB/s fairness ${v.fairness}`}`).join(', ')}`);
    }
    if (only.has('scale')) {
      collectLog(results, bridge);
      progress(`scale: fresh podbridge, idle sessions at ${P.levels.join(', ')}`);
      const fresh = await ctx.restartBridge();
      const deadline = deadlineFor('scale');
      const part = await scaleBridge(ctx, fresh, P.levels, { perConnection: P.sessionsPerConnection, concurrency: P.concurrency, idleWindowMs: P.idleWindowMs, deadline });
      let recipeCost = null;
      let opensshCost = null;
      if (recipeSshd) {
        progress(`scale: recipe, ${P.treeSessions} idle sessions`);
        recipeCost = await scaleSshdTree(ctx, { port: recipeSshd.port, user: recipeSshd.user }, recipeSshd.pid, P.treeSessions, Date.now() + 60_000);
      }
      if (opensshd) {
        progress(`scale: OpenSSH, ${P.treeSessions} idle sessions`);
        opensshCost = await scaleSshdTree(ctx, { port: opensshd.port, user: opensshd.user }, opensshd.pid, P.treeSessions, Date.now() + 60_000);
      }
      results.scale = { ...part, recipe: recipeCost, openssh: opensshCost };
      if (candidateRoot && candidate) {
        collectLog(results, candidate);
        progress('scale: fresh candidate podbridge');
        await candidate.stop();
        candidate = await launchBridge({ root: candidateRoot, inspector: true, env: candidateEnv });
        const c = candidate;
        const cpath = sshPath('candidate', { port: c.port, user: loginName(t) }, key);
        paths[paths.findIndex((p) => p.name === 'candidate')] = cpath;
        const cpart = await scaleBridge({ ...ctx, paths: [{ ...cpath, name: 'podbridge' }] }, c, P.levels, {
          perConnection: P.sessionsPerConnection,
          concurrency: P.concurrency,
          idleWindowMs: P.idleWindowMs,
          deadline: deadlineFor('scale'),
        });
        results.scaleCandidate = { ...cpart, recipe: null, openssh: null };
      }
    }
    if (only.has('docker')) {
      progress(`docker: podbridge --backend docker vs docker exec, ${fmtS(P.downloadBytes)} × ${P.throughputRounds} rounds`);
      results.docker = await dockerScenario(ctx, bridgeRoot, P.downloadBytes, P.throughputRounds, deadlineFor('docker'));
      const d = results.docker;
      if (!('error' in d)) progress(`docker done (${d.engine}): download ${medians(d.download, 'MiB/s')}; upload ${medians(d.upload, 'MiB/s')}; true ${medians(d.sshTrue, 'ms')}`);
    }
    if (only.has('forward')) {
      progress(`forward: ssh -L through podbridge vs kubectl port-forward, ${fmtS(P.downloadBytes)} × ${P.throughputRounds} rounds`);
      results.forward = await forwardScenario(ctx, bridgeRoot, P.downloadBytes, P.throughputRounds, deadlineFor('forward'));
      const f = results.forward;
      if (!('error' in f)) progress(`forward done: ${medians(f.download, 'MiB/s')}`);
    }
    collectLog(results, bridge);
    if (candidate) collectLog(results, candidate);

    const jiffiesEnd = cpuJiffies();
    results.contention.loadEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
    results.contention.machineBusyPercent = Math.round(((jiffiesEnd.busy - jiffiesStart.busy) / Math.max(1, jiffiesEnd.total - jiffiesStart.total)) * 1000) / 10;
    results.finishedAt = new Date().toISOString();
    results.durationSeconds = Math.round((performance.now() - t0) / 1000);
    results.verdicts = verdicts(results);
    const outDir = values.out ?? path.join(ROOT, 'bench', 'results');
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, fileName(results));
    fs.writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    progress(`results: ${path.relative(ROOT, file)}`);
    const writeDocs = values['no-docs'] ? false : (values.docs ?? !quick);
    if (writeDocs) {
      updateDoc(path.join(ROOT, 'docs', 'benchmarks.md'), markdown(results), DOC_TEMPLATE);
      progress('docs/benchmarks.md regenerated');
    }
    for (const v of results.verdicts) progress(`${v.met === null ? 'n/a ' : v.met ? 'MET ' : 'MISS'} ${v.goal}: ${v.measured}`);
  } finally {
    await cleanup();
  }
  progress(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

function collectLog(results: Results, b: BridgeProcess): void {
  for (const [k, v] of Object.entries(b.logCounts)) results.bridgeLog.counts[k] = (results.bridgeLog.counts[k] ?? 0) + v;
  results.bridgeLog.lastErrors.push(...b.lastErrors);
  results.bridgeLog.lastErrors = results.bridgeLog.lastErrors.slice(-5);
  for (const k of Object.keys(b.logCounts)) b.logCounts[k] = 0;
  b.lastErrors.length = 0;
}

function medians(m: Record<string, { median?: number; error?: string } | undefined>, unit: string): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${v?.error ? 'failed' : `${v?.median ?? 'n/a'} ${unit}`}`)
    .join(', ');
}

function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new Error(`--candidate-env: expected K=V[,K=V], got "${text}"`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

function positive(v: string, what: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: expected a positive integer, got "${v}"`);
  return n;
}

/**
 * Profiling passes, podbridge alone: a CPU profile of the bridge while it moves a download, an
 * upload and keystrokes (each in a fresh bridge, so each profile holds one kind of work), and a
 * heap snapshot with the top number of idle sessions open.
 */
async function profilePasses(
  ctx: BenchContext,
  P: Params,
  dir: string,
  launch: (o: { cpuProf?: string; heap?: boolean; inspector?: boolean }) => Promise<BridgeProcess>,
  setBridge: (b: BridgeProcess) => void,
  outDirArg: string | undefined,
  only: ReadonlySet<Scenario>,
): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const out: { cpu: Record<string, CpuSummary | string>; heap: HeapSummary | string | null } = { cpu: {}, heap: null };
  const passes: Array<[string, (p: BenchPath) => Promise<unknown>]> = [
    ['download', (p) => p.download(P.downloadBytes, 600_000)],
    ['upload', (p) => p.upload(P.uploadBytes, 600_000)],
    ['latency', async () => {
      const { latency: lat } = await import('./scenarios/latency.ts');
      return lat({ ...ctx, paths: ctx.paths.filter((p) => p.name === 'podbridge') }, P.latencyPerRound, 2, Date.now() + 120_000, 0);
    }],
  ];
  // --only download,upload,latency,scale picks the passes (scale: the heap snapshots).
  for (const [name, work] of passes.filter(([n]) => only.has(n as Scenario))) {
    const profDir = path.join(dir, name);
    fs.mkdirSync(profDir, { recursive: true });
    await ctx.bridge.stop();
    const b = await launch({ cpuProf: profDir });
    setBridge(b);
    const p = sshPath('podbridge', { port: b.port, user: loginName(ctx.cluster.target) }, ctx.key);
    ctx.paths.splice(0, ctx.paths.length, p);
    ctx.progress(`profile ${name}: warm-up, then profiled work`);
    // Warm-up so module loading and first compilations stay out of the window.
    await p.download(4 * MiB, 60_000);
    await p.upload(4 * MiB, 60_000);
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    for (let i = 0; i < 2; i++) await work(p);
    const toUs = Number(process.hrtime.bigint() / 1000n);
    await b.stop();
    const f = fs.readdirSync(profDir).find((x) => x.endsWith('.cpuprofile'));
    if (!f) {
      out.cpu[name] = 'no profile written';
      continue;
    }
    const s = summarizeCpuProfile(path.join(profDir, f), 25, { fromUs, toUs });
    out.cpu[name] = s;
    ctx.progress(`profile ${name}: ${s.totalMs} ms sampled, ${s.busyPercent}% busy; by module: ${s.byModule.slice(0, 8).map((m) => `${m.module} ${m.selfPercentOfBusy}%`).join(', ')}`);
    for (const fn of s.topFunctions.slice(0, 12)) ctx.progress(`    ${String(fn.selfPercentOfBusy).padStart(5)}%  ${fn.fn}  ${fn.where}`);
  }
  // Heap: a fresh bridge that accepts SIGUSR2 snapshots, the top level of idle sessions.
  if (!only.has('scale')) return writeProfileSummary(dir, P, out, outDirArg, ctx);
  await ctx.bridge.stop();
  const hb = await launch({ heap: true, inspector: true });
  setBridge(hb);
  ctx.paths.splice(0, ctx.paths.length, sshPath('podbridge', { port: hb.port, user: loginName(ctx.cluster.target) }, ctx.key));
  const top = Math.max(...P.levels);
  ctx.progress(`profile heap: snapshots at 0 and ${top} idle sessions`);
  let baseFile: string | null = null;
  const keep = async (name: string): Promise<string | null> => {
    const file = await hb.heapSnapshot();
    if (!file) return null;
    const kept = path.join(dir, name);
    fs.renameSync(file, kept);
    return kept;
  };
  await scaleBridge(ctx, hb, [top], {
    perConnection: P.sessionsPerConnection,
    concurrency: P.concurrency,
    idleWindowMs: 1000,
    deadline: Date.now() + 600_000,
    onBaseline: async () => {
      baseFile = await keep('bridge-0-sessions.heapsnapshot');
    },
    onTop: async (sessions) => {
      const file = await keep(`bridge-${sessions}-sessions.heapsnapshot`);
      if (!file || !baseFile) {
        out.heap = 'no heap snapshot written';
        return;
      }
      const s = summarizeHeapGrowth(baseFile, file, sessions);
      out.heap = s;
      ctx.progress(`profile heap: V8 heap grew ${(s.heapGrowthBytes / MiB).toFixed(1)} MiB = ${(s.heapGrowthPerSession / 1024).toFixed(1)} KiB/session (the rest of the RSS growth is native memory)`);
      for (const g of s.top.slice(0, 20)) ctx.progress(`    ${String((g.perSessionBytes / 1024).toFixed(2)).padStart(7)} KiB/session  ${g.countPerSession}×  ${g.type} ${g.name}`);
    },
  });
  writeProfileSummary(dir, P, out, outDirArg, ctx);
}

function writeProfileSummary(dir: string, P: Params, out: { cpu: Record<string, CpuSummary | string>; heap: HeapSummary | string | null }, outDirArg: string | undefined, ctx: BenchContext): void {
  const outDir = outDirArg ?? path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `profile-${new Date().toISOString().replace(/:/g, '').replace(/\.\d+Z$/, 'Z')}.json`);
  fs.writeFileSync(file, `${JSON.stringify({ machine: machineInfo(ROOT), parameters: P, profiles: out, profileDir: dir }, null, 2)}\n`);
  ctx.progress(`profile summaries: ${path.relative(ROOT, file)}; raw profiles in ${dir}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  killAllChildrenSync();
  process.exitCode = 1;
});


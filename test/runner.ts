/**
 * `npm test`'s runner. Each compiled test file runs in a process of its own, so a file that hangs
 * costs its own budget, not the run's: one more at a time than there are cores
 * (PODBRIDGE_TEST_CONCURRENCY to change it), the longest of the last run first (from
 * build/test-timings.json), so that the run does not end with one long file running alone.
 *
 * Budgets: every file has a budget for the whole file and one for any single test in it, by
 * directory (unit tests get seconds), overridable in the file with a comment line such as
 * `// test-budget: file 240 s, test 150 s`. A file over a budget is stopped, and the runner says
 * what it was doing first: the test that was running, the last ones that finished, a Node.js
 * diagnostic report of every node process of the file (JavaScript stack, open handles; asked for
 * with SIGUSR2, which each of them answers through `--report-on-signal`), the kernel's view of a
 * process that could not answer with the native stack of its main thread (gdb), and the file's
 * last output lines. A file whose reporter has heard nothing 45 s after it started, and whose main
 * thread then uses no CPU for 5 s, is stuck (issue 16's deadlock looked so) and stopped the same
 * way. A file that outlives its last test by 5 s is asked what keeps it alive, and the run
 * says so (LINGER): such waits add up in every run.
 *
 * Nothing passes in silence (issue 16): the run does not start from a build compiled from other
 * sources (test/support/stale-build.ts), and a file that exits 0 fails unless every test and suite
 * it registered (test/support/registered-tests.ts) was reported.
 *
 * Usage: node build/test/runner.js [FILTER...]   (files whose path contains a FILTER)
 *        node build/test/runner.js --slow         (the slowest files and tests of the last run)
 *        node build/test/runner.js --budget FILE_S,TEST_S[,START_S] /abs/x.test.js   (a file
 *            outside the suite with the given budgets; the runner's own test uses this)
 * The last line is "N passed, N failed" (", N skipped" when some were).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EventLine } from './support/events-reporter.ts';
import type { RegisteredLine } from './support/registered-tests.ts';
import { staleSources } from './support/stale-build.ts';
import { CODE, REPO } from './helpers/paths.ts';

interface Budget {
  fileMs: number;
  testMs: number;
}

/** Sized from measured runs on 2 loaded cores, with room to spare (see `npm run test:slow`). */
const DEFAULT_BUDGETS: Record<string, Budget> = {
  unit: { fileMs: 90_000, testMs: 30_000 },
  conformance: { fileMs: 420_000, testMs: 180_000 },
  e2e: { fileMs: 300_000, testMs: 150_000 },
};
const TEST_DIRS = Object.keys(DEFAULT_BUDGETS);
const TIMINGS_FILE = path.join(CODE, 'test-timings.json');
const REPORT_WAIT_MS = 4_000;
/** A file that has not told its reporter anything by then has kept its main thread from the
 *  event loop since it started: loading, a test that never yields, or stuck. Stuck (no CPU used
 *  for STUCK_MS), it is diagnosed with the main thread's native stack, which is where the cause
 *  of issue 16 showed (a Node 20 crypto deadlock, see src/ssh/keys.ts), and stopped as a failure.
 *  No retry: a retry turned that deadlock into a flake that passed. */
const START_BUDGET_MS = 45_000;
/** A file whose process outlives its last test by this much is asked what keeps it alive: a
 *  pending timer or an open handle costs its whole delay in every run (node:test exits only once
 *  the event loop is empty). */
const LINGER_MS = 5_000;
const NATIVE_STACK_FRAMES = 18;
/** How long a silent file's main thread may use no CPU before it counts as stuck. */
const STUCK_MS = 5_000;
const OUTPUT_TAIL_LINES = 60;
/** Where test/support/registered-tests.ts writes what the file registered, in the file's dir. */
const REGISTERED_FILE = 'registered.jsonl';
/** How many unreported tests a failure names. */
const UNREPORTED_NAMES = 10;

interface FileRun {
  source: string; // test/unit/x.test.ts
  compiled: string;
  budget: Budget;
  child: ChildProcess;
  started: number;
  dir: string;
  output: string[];
  events: EventLine[];
  eventsRead: number;
  partial: string;
  timedOut: string | null;
  /** While the file is silent past the start budget: its main thread's CPU time, and since when. */
  startCpu: { ticks: number; since: number } | null;
  /** When its last top-level test ended (seen by the watchdog), while the process still runs. */
  finishedAt: number | null;
  /** What kept the process alive after its last test, from a diagnostic report. */
  lingerWhy: string[] | null;
  exit: Promise<number | null>;
}

interface FileResult {
  source: string;
  ms: number;
  code: number | null;
  timedOut: string | null;
  events: EventLine[];
  /** How long the process outlived its last test, when that was over LINGER_MS. */
  lingerMs: number | null;
  /** Why tests the file registered count for nothing (issue 16), or null when all were reported. */
  unreported: string | null;
}

interface Timings {
  files: Record<string, number>;
  tests: Array<{ file: string; name: string; ms: number }>;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--slow')) return printSlow();
  const b = args.indexOf('--budget');
  if (b >= 0) {
    const [fileS, testS, startS] = (args[b + 1] ?? '').split(',').map(Number);
    if (!fileS || !testS) throw new Error('--budget takes FILE_SECONDS,TEST_SECONDS[,START_SECONDS]');
    budgetOverride = { fileMs: fileS * 1000, testMs: testS * 1000 };
    if (startS) startBudgetMs = startS * 1000;
    args.splice(b, 2);
  }
  // Absolute paths of compiled files outside the suite run as they are, and leave no timings.
  const external = args.filter((a) => path.isAbsolute(a) && /\.m?js$/.test(a));
  const filters = args.filter((a) => !external.includes(a));
  const files = [
    ...(external.length > 0 && filters.length === 0 ? [] : discover().filter((f) => filters.length === 0 || filters.some((a) => f.includes(a.replace(/\.js$/, '.ts'))))),
    ...external,
  ];
  if (files.length === 0) {
    console.error(`no test file matches ${args.join(' ')}`);
    return 1;
  }
  const stale = staleSources(path.join(CODE, '.tsbuildinfo'), REPO);
  if (stale.length > 0) {
    console.error(
      `build/ was compiled from other sources than these (${stale.slice(0, 5).join(', ')}${stale.length > 5 ? `, and ${stale.length - 5} more` : ''}): run \`npm test\`, which compiles first. Issue 16: tests added to a file ran from an old build, which did not have them, and the run counted as passing.`,
    );
    return 1;
  }
  // One more file than cores: measured on 2 shared cores, the suite's own processes used 22 % of
  // the CPU over a whole run (311 s in 701 s); its files mostly wait (ssh handshakes, dockerd).
  const concurrency = Math.max(1, Number(process.env.PODBRIDGE_TEST_CONCURRENCY ?? os.availableParallelism() + 1));
  const previous = readTimings();
  // Longest first: two queues finish together instead of one long file running alone at the end.
  files.sort((a, b) => (previous?.files[b] ?? 0) - (previous?.files[a] ?? 0));
  const started = Date.now();
  const results: FileResult[] = [];
  const queue = [...files];
  const running = new Set<FileRun>();
  const watchdog = setInterval(() => {
    for (const run of running) checkBudgets(run);
  }, 1000);
  await Promise.all(
    Array.from({ length: Math.min(concurrency, files.length) }, async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const run = startFile(next);
        running.add(run);
        const code = await run.exit;
        running.delete(run);
        readEvents(run);
        const now = Date.now();
        const lingerMs = run.finishedAt !== null && run.timedOut === null && now - run.finishedAt > LINGER_MS ? now - run.finishedAt : null;
        const unreported = code === 0 && run.timedOut === null ? findUnreported(run) : null;
        const result: FileResult = { source: run.source, ms: now - run.started, code, timedOut: run.timedOut, events: run.events, lingerMs, unreported };
        results.push(result);
        printFile(run, result);
        if (lingerMs !== null) {
          process.stdout.write(
            `LINGER ${run.source}: the process ran ${(lingerMs / 1000).toFixed(1)} s after its last test (its root after() hooks, then whatever was still pending: node:test exits only once nothing is); ${run.lingerWhy ? run.lingerWhy.join('; ') : 'no report'}\n`,
          );
        }
        fs.rmSync(run.dir, { recursive: true, force: true });
      }
    }),
  );
  clearInterval(watchdog);
  return summarize(results, Date.now() - started, external.length > 0 ? null : previous, external.length === 0);
}

let budgetOverride: Budget | null = null;
let startBudgetMs = START_BUDGET_MS;

function discover(): string[] {
  const out: string[] = [];
  for (const dir of TEST_DIRS) {
    const abs = path.join(REPO, 'test', dir);
    if (!fs.existsSync(abs)) continue;
    for (const name of fs.readdirSync(abs).sort()) if (name.endsWith('.test.ts')) out.push(`test/${dir}/${name}`);
  }
  return out;
}

function budgetOf(source: string): Budget {
  if (budgetOverride) return budgetOverride;
  const dir = source.split('/')[1] ?? 'unit';
  const budget = { ...(DEFAULT_BUDGETS[dir] ?? DEFAULT_BUDGETS.unit!) };
  const text = fs.readFileSync(path.join(REPO, source), 'utf8');
  const m = /^\/\/ test-budget: file (\d+) s(?:, test (\d+) s)?$/m.exec(text);
  if (m) {
    budget.fileMs = Number(m[1]) * 1000;
    if (m[2]) budget.testMs = Number(m[2]) * 1000;
  }
  return budget;
}

function startFile(source: string): FileRun {
  const compiled = path.isAbsolute(source) ? source : path.join(CODE, source.replace(/\.ts$/, '.js'));
  if (!fs.existsSync(compiled)) throw new Error(`${compiled} is missing: compile first (npm test does)`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-test-run-'));
  // A HOME of its own, empty: local shells started by a test must not read this machine's
  // dotfiles (a pyenv init that waits on a stale lock once made every login shell take a minute).
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  const reporter = path.join(CODE, 'test/support/events-reporter.js');
  const registry = pathToFileURL(path.join(CODE, 'test/support/registered-tests.js')).href;
  // Every node process the file starts (bridges, the fake API server) inherits NODE_OPTIONS, so
  // each can answer SIGUSR2 with a diagnostic report when the file goes over its budget.
  const nodeOptions = [process.env.NODE_OPTIONS ?? '', '--report-on-signal', '--report-signal=SIGUSR2', `--report-directory=${dir}`, '--enable-source-maps']
    .join(' ')
    .trim();
  const child = spawn(
    process.execPath,
    [`--import=${registry}`, '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${reporter}`, `--test-reporter-destination=${path.join(dir, 'events.jsonl')}`, compiled],
    // Its own process group: a timeout stops the file and everything it started, at once.
    {
      cwd: REPO,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: home, NODE_OPTIONS: nodeOptions, PB_TEST_REGISTRY: path.join(dir, REGISTERED_FILE) },
    },
  );
  const run: FileRun = {
    source,
    compiled,
    budget: budgetOf(source),
    child,
    started: Date.now(),
    dir,
    output: [],
    events: [],
    eventsRead: 0,
    partial: '',
    timedOut: null,
    startCpu: null,
    finishedAt: null,
    lingerWhy: null,
    exit: new Promise((resolve) => child.once('close', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : null)))),
  };
  const keep = (b: Buffer) => {
    run.output.push(b.toString());
    // Bounded: a chatty file keeps only its most recent output.
    if (run.output.length > 4000) run.output.splice(0, run.output.length - 4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return run;
}

function readEvents(run: FileRun): void {
  let chunk: string;
  try {
    const fd = fs.openSync(path.join(run.dir, 'events.jsonl'), 'r');
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= run.eventsRead) return;
      const buf = Buffer.alloc(size - run.eventsRead);
      fs.readSync(fd, buf, 0, buf.length, run.eventsRead);
      run.eventsRead = size;
      chunk = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return;
  }
  const lines = (run.partial + chunk).split('\n');
  run.partial = lines.pop() ?? '';
  for (const l of lines) if (l.trim() !== '') run.events.push(JSON.parse(l) as EventLine);
}

/**
 * Issue 16: a file that exits 0 passes only if every test and suite it registered was reported
 * (passed, failed or skipped). node:test stops reporting once the event loop first empties; a
 * test registered after that runs unreported and its failure cannot fail the file, so a file
 * counted as passing could have run fewer tests than it declares. Null when all were reported.
 */
function findUnreported(run: FileRun): string | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(run.dir, REGISTERED_FILE), 'utf8');
  } catch {
    return 'the file exited without the record of the tests it registered (test/support/registered-tests.ts writes it at exit), so the runner cannot tell whether every one of them was reported';
  }
  const registered = text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as RegisteredLine);
  const key = (nesting: number, name: string) => `${nesting}\t${name}`;
  const reported = new Map<string, number>();
  for (const e of run.events) {
    if (e.type !== 'pass' && e.type !== 'fail') continue;
    reported.set(key(e.nesting, e.name), (reported.get(key(e.nesting, e.name)) ?? 0) + 1);
  }
  const missing: RegisteredLine[] = [];
  for (const r of registered) {
    const left = reported.get(key(r.nesting, r.name)) ?? 0;
    if (left > 0) reported.set(key(r.nesting, r.name), left - 1);
    else missing.push(r);
  }
  if (missing.length === 0) return null;
  const late = missing.some((m) => m.afterSummary) ? ' (some were registered after node:test had printed its summary: register every test synchronously when the file loads)' : '';
  const names = missing.slice(0, UNREPORTED_NAMES).map((m) => `"${m.name}"`);
  if (missing.length > UNREPORTED_NAMES) names.push(`and ${missing.length - UNREPORTED_NAMES} more`);
  return `${missing.length} of the ${registered.length} tests and suites it registered were never reported, so they count for nothing (issue 16)${late}: ${names.join(', ')}`;
}

/** The tests started and not yet finished, outermost first, each with its start time. */
function openTests(run: FileRun): Array<{ name: string; since: number; line?: number | undefined }> {
  const stack: Array<{ name: string; since: number; line?: number | undefined }> = [];
  for (const e of run.events as Array<EventLine & { at?: number }>) {
    if (e.type === 'planned') continue;
    if (e.type === 'start') {
      stack.length = Math.min(stack.length, e.nesting);
      stack.push({ name: e.name, since: e.at ?? run.started, line: e.line });
    } else {
      stack.length = Math.min(stack.length, e.nesting);
      // Between two tests of a suite the suite is innermost: its clock restarts when a test of it
      // ends, or a describe whose tests add up past the per-test budget was stopped in the gap
      // (loaded run 2 of kubernetes-lifecycle, each test well within it).
      const parent = stack[e.nesting - 1];
      if (parent !== undefined) parent.since = e.at ?? parent.since;
    }
  }
  return stack;
}

function checkBudgets(run: FileRun): void {
  if (run.timedOut !== null || run.child.exitCode !== null) return;
  const before = run.events.length;
  readEvents(run);
  // Stamp new events with the time we saw them (within the watchdog's second).
  const now = Date.now();
  for (const e of run.events.slice(before) as Array<EventLine & { at?: number }>) e.at = now;
  const elapsed = now - run.started;
  if (run.events.length === 0 && elapsed > startBudgetMs && startBudgetMs < run.budget.fileMs) {
    // Silent so far. A main thread that still uses CPU is working (a long synchronous test: the
    // file budget judges it); one that has used none for a while is stuck for good.
    // A main thread waiting on a child (spawnSync, execFileSync) is not stuck on its own account.
    const cpu = mainThreadCpu(run.child.pid!);
    const waitsOnChild = processTree(run.child.pid!).some((p) => p.ppid === run.child.pid);
    if (run.startCpu === null || cpu !== run.startCpu.ticks || waitsOnChild) run.startCpu = { ticks: cpu, since: now };
    else if (now - run.startCpu.since >= STUCK_MS) {
      return void timeOut(
        run,
        `its reporter heard nothing within ${((now - run.started) / 1000).toFixed(0)} s and its main thread has used no CPU for ${STUCK_MS / 1000} s: it is stuck before reaching the event loop (a deadlock or a wait that never ends; issue 16: read the native stack below)`,
      );
    }
  }
  if (run.finishedAt === null) {
    const planned = run.events.filter((e) => e.type === 'planned').length;
    const ended = run.events.filter((e) => e.nesting === 0 && (e.type === 'pass' || e.type === 'fail')).length;
    if (planned > 0 && ended >= planned) run.finishedAt = now;
  } else if (run.lingerWhy === null && now - run.finishedAt > LINGER_MS) {
    run.lingerWhy = ['asking it what it waits for'];
    void askWhyLingering(run);
  }
  if (elapsed > run.budget.fileMs) return void timeOut(run, `the file ran over its budget of ${run.budget.fileMs / 1000} s`);
  const open = openTests(run);
  const inner = open[open.length - 1];
  if (inner && now - inner.since > run.budget.testMs) {
    timeOut(run, `test "${open.map((t) => t.name).join(' > ')}" ran over the per-test budget of ${run.budget.testMs / 1000} s`);
  }
}

function timeOut(run: FileRun, why: string): void {
  run.timedOut = why;
  void diagnoseAndKill(run, why);
}

async function diagnoseAndKill(run: FileRun, why: string): Promise<void> {
  const out: string[] = [`TIMEOUT ${run.source}: ${why} (after ${((Date.now() - run.started) / 1000).toFixed(1)} s)`];
  readEvents(run);
  const open = openTests(run);
  out.push(open.length > 0 ? `  running: ${open.map((t) => `${t.name}${t.line ? ` (line ${t.line})` : ''}`).join(' > ')}` : '  running: no test had started (a hook, module loading, or after the last test)');
  const done = run.events.filter((e) => e.type === 'pass' || e.type === 'fail').slice(-5);
  for (const e of done) out.push(`  finished: ${e.type} ${e.name}${e.ms !== undefined ? ` (${e.ms} ms)` : ''}`);
  const pids = processTree(run.child.pid!);
  const nodes = pids.filter((p) => p.comm === 'node' || p.cmdline.startsWith(process.execPath));
  for (const p of nodes) {
    try {
      process.kill(p.pid, 'SIGUSR2');
    } catch {
      // gone already
    }
  }
  const reports = await waitForReports(run.dir, nodes.map((p) => p.pid));
  // A node process that could not answer: its main thread's native stack says where it is.
  const stacks = new Map(await Promise.all(nodes.filter((p) => !reports.has(p.pid)).map(async (p) => [p.pid, await nativeStack(p.pid)] as const)));
  for (const p of pids) {
    out.push(`  process ${p.pid} (${p.state}, ${p.cmdline.slice(0, 160)})`);
    const report = reports.get(p.pid);
    if (report) out.push(...summarizeReport(report).map((l) => `    ${l}`));
    else if (!nodes.includes(p)) out.push(`    kernel wait channel: ${p.wchan}`);
    else {
      if (p.state === 'R') out.push(`    no diagnostic report within ${REPORT_WAIT_MS / 1000} s: its JavaScript thread is running without yielding to the event loop (a busy loop, or a very long synchronous call)`);
      else out.push(`    no diagnostic report within ${REPORT_WAIT_MS / 1000} s: its JavaScript thread is blocked in the kernel (state ${p.state}, wait channel ${p.wchan}; threads: ${threadStates(p.pid)})`);
      out.push(...(stacks.get(p.pid) ?? []).map((l) => `    ${l}`));
    }
  }
  try {
    process.kill(-run.child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
  for (const p of pids) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const tail = run.output.join('').split('\n').slice(-OUTPUT_TAIL_LINES);
  out.push(`  last ${tail.length} output lines:`, ...tail.map((l) => `  | ${l}`));
  process.stdout.write(`${out.join('\n')}\n`);
}

/** What kept a file's process alive after its last test, from a diagnostic report of it. */
async function askWhyLingering(run: FileRun): Promise<void> {
  const pid = run.child.pid!;
  try {
    process.kill(pid, 'SIGUSR2');
  } catch {
    return;
  }
  const report = (await waitForReports(run.dir, [pid])).get(pid);
  run.lingerWhy = report ? summarizeReport(report).filter((l) => l.startsWith('handles')) : ['no diagnostic report (the process exited, or its main thread is busy)'];
  // Gone, so that a timeout's diagnosis later waits for a fresh one.
  for (const name of fs.readdirSync(run.dir)) if (name.startsWith('report.')) fs.rmSync(path.join(run.dir, name), { force: true });
}

/** The main thread's native stack, through gdb (installed by .ci/run); names of frames only. */
function nativeStack(pid: number): Promise<string[]> {
  return new Promise((resolve) => {
    execFile('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', `bt ${NATIVE_STACK_FRAMES}`], { timeout: 60_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout) => {
      const frames = stdout
        .split('\n')
        .map((l) => /^#(\d+)\s+(?:0x[0-9a-f]+ in )?(.+?)(?: \(.*)?$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => `  #${m[1]} ${m[2] === '??' ? '(JavaScript)' : m[2]!.slice(0, 150)}`)
        // Generated code has no symbols: one line for a run of such frames.
        .filter((line, i, all) => !(line.endsWith('(JavaScript)') && all[i - 1]?.endsWith('(JavaScript)')));
      if (frames.length > 0) resolve(['native stack of its main thread (gdb):', ...frames]);
      else resolve([`no native stack: ${err ? `gdb failed (${err.message.split('\n')[0]}; install gdb)` : 'gdb printed none'}`]);
    });
  });
}

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  comm: string;
  cmdline: string;
  wchan: string;
}

/** The file's process group and every descendant (node-pty shells start sessions of their own). */
function processTree(root: number): Proc[] {
  const all: Proc[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      all.push({
        pid: Number(name),
        comm: stat.slice(stat.indexOf('(') + 1, close),
        state: fields[0] ?? '?',
        ppid: Number(fields[1]),
        pgid: Number(fields[2]),
        cmdline: fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim(),
        wchan: safeRead(`/proc/${name}/wchan`),
      });
    } catch {
      // exited while we looked
    }
  }
  const picked = new Set(all.filter((p) => p.pid === root || p.pgid === root).map((p) => p.pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) if (!picked.has(p.pid) && picked.has(p.ppid)) grew = picked.add(p.pid) !== null;
  }
  return all.filter((p) => picked.has(p.pid));
}

/** User plus system clock ticks of a process's main thread (-1 when gone). */
function mainThreadCpu(pid: number): number {
  const stat = safeRead(`/proc/${pid}/task/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields.length > 13 ? Number(fields[11]) + Number(fields[12]) : -1;
}

function threadStates(pid: number): string {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .map((tid) => `${safeRead(`/proc/${pid}/task/${tid}/comm`)}:${safeRead(`/proc/${pid}/task/${tid}/wchan`)}`)
      .join(', ');
  } catch {
    return 'unknown';
  }
}

function safeRead(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return '?';
  }
}

interface NodeReport {
  header?: { commandLine?: string[] };
  javascriptStack?: { message?: string; stack?: string[] };
  libuv?: Array<{ type: string; is_active?: boolean; is_referenced?: boolean; localEndpoint?: unknown; remoteEndpoint?: unknown; pid?: number; firesInMsFromNow?: number; filename?: string }>;
}

async function waitForReports(dir: string, pids: number[]): Promise<Map<number, NodeReport>> {
  const found = new Map<number, NodeReport>();
  const deadline = Date.now() + REPORT_WAIT_MS;
  while (found.size < pids.length && Date.now() < deadline) {
    for (const name of fs.readdirSync(dir)) {
      const m = /^report\.\d+\.\d+\.(\d+)\.\d+\.\d+\.json$/.exec(name);
      if (!m || found.has(Number(m[1]))) continue;
      try {
        found.set(Number(m[1]), JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as NodeReport);
      } catch {
        // still being written
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return found;
}

function summarizeReport(r: NodeReport): string[] {
  const lines: string[] = [];
  const stack = (r.javascriptStack?.stack ?? []).map((s) => s.trim()).filter((s) => s !== '' && !s.includes('node:internal/process/report'));
  lines.push(stack.length > 0 ? `JavaScript stack: ${stack.slice(0, 8).join(' | ')}` : 'JavaScript stack: idle (waiting in the event loop)');
  const handles = (r.libuv ?? []).filter((h) => h.is_active && h.is_referenced && h.type !== 'async' && h.type !== 'signal');
  const describe = (h: NonNullable<NodeReport['libuv']>[number]) => {
    const ep = (e: unknown) => (e && typeof e === 'object' ? `${(e as { host?: string; ip4?: string }).ip4 ?? (e as { host?: string }).host ?? ''}:${(e as { port?: number }).port ?? ''}` : '');
    if (h.type === 'tcp') return h.remoteEndpoint ? `tcp ${ep(h.localEndpoint)} -> ${ep(h.remoteEndpoint)}` : `tcp listening on ${ep(h.localEndpoint)}`;
    if (h.type === 'process') return `child process ${h.pid}`;
    if (h.type === 'timer') return `timer (fires in ${h.firesInMsFromNow ?? '?'} ms)`;
    if (h.type === 'fs_event' || h.type === 'fs_poll') return `${h.type} ${h.filename ?? ''}`;
    return h.type;
  };
  lines.push(`handles keeping it alive: ${handles.length === 0 ? 'none' : handles.map(describe).join(', ')}`);
  return lines;
}

function printFile(run: FileRun, r: FileResult): void {
  const failed = r.code !== 0 || r.timedOut !== null || r.unreported !== null;
  const head = `${failed ? 'FAIL' : 'ok  '} ${r.source} (${(r.ms / 1000).toFixed(1)} s)`;
  const text = run.output.join('');
  // Passing files: the spec reporter's lines. Failing ones: everything they printed.
  const body = failed ? text : text.split('\n').filter((l) => /^\s*(✔|✖|﹣|▶|ℹ)/u.test(l)).join('\n');
  process.stdout.write(`${head}\n${body.replace(/\n*$/, '\n')}`);
  if (r.code !== 0 && r.timedOut === null && !r.events.some((e) => e.type === 'fail')) {
    process.stdout.write(`FAIL ${r.source}: the process exited with ${r.code} without a failing test (a crash before or between tests; output above)\n`);
  }
  if (r.unreported !== null) process.stdout.write(`FAIL ${r.source}: ${r.unreported}\n`);
}

function summarize(results: FileResult[], ms: number, previous: Timings | null, record: boolean): number {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  const failures: string[] = [];
  for (const r of results) {
    for (const e of r.events) {
      if (e.type === 'start' || e.type === 'planned' || e.suite) continue;
      if (e.skip || e.todo) skipped++;
      else if (e.type === 'pass') passed++;
      else {
        failed++;
        failures.push(`${r.source}: ${e.name}: ${e.error ?? ''}`);
      }
    }
    // A timeout or a crash outside any test is a failure of its own.
    if (r.timedOut !== null) {
      failed++;
      failures.push(`${r.source}: ${r.timedOut}`);
    } else if (r.code !== 0 && !r.events.some((e) => e.type === 'fail')) {
      failed++;
      failures.push(`${r.source}: exited with ${r.code} outside any test`);
    } else if (r.unreported !== null) {
      failed++;
      failures.push(`${r.source}: ${r.unreported}`);
    }
  }
  const timings: Timings = {
    files: { ...(previous?.files ?? {}), ...Object.fromEntries(results.map((r) => [r.source, r.ms])) },
    tests: results
      .flatMap((r) => r.events.filter((e) => e.type !== 'start' && !e.suite && e.ms !== undefined).map((e) => ({ file: r.source, name: e.name, ms: e.ms! })))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 50),
  };
  if (record) fs.writeFileSync(TIMINGS_FILE, JSON.stringify(timings, null, 1));
  const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 5);
  console.log(`\nslowest files: ${slowest.map((r) => `${r.source} ${(r.ms / 1000).toFixed(0)} s`).join(', ')}  (npm run test:slow for more)`);
  const lingering = results.filter((r) => r.lingerMs !== null);
  if (lingering.length > 0) console.log(`\nalive after their last test (see LINGER above): ${lingering.map((r) => `${r.source} ${((r.lingerMs ?? 0) / 1000).toFixed(0)} s`).join(', ')}`);
  if (failures.length > 0) console.log(`\nfailures:\n${failures.map((f) => `  ${f}`).join('\n')}`);
  console.log(`# files ${results.length}, duration ${(ms / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
  return failed > 0 ? 1 : 0;
}

function readTimings(): Timings | null {
  try {
    return JSON.parse(fs.readFileSync(TIMINGS_FILE, 'utf8')) as Timings;
  } catch {
    return null;
  }
}

function printSlow(): number {
  const t = readTimings();
  if (t === null) {
    console.error('no timings yet: run `npm test` first');
    return 1;
  }
  const files = Object.entries(t.files).sort((a, b) => b[1] - a[1]);
  const total = files.reduce((s, [, ms]) => s + ms, 0);
  console.log(`files, slowest first (sum ${(total / 1000).toFixed(0)} s of file time):`);
  for (const [f, ms] of files.slice(0, 20)) console.log(`  ${(ms / 1000).toFixed(1).padStart(7)} s  ${f}`);
  console.log('tests, slowest first:');
  for (const x of t.tests.slice(0, 20)) console.log(`  ${(x.ms / 1000).toFixed(1).padStart(7)} s  ${x.file}: ${x.name}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);

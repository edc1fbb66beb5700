/**
 * Loaded with `--import` into every test file's process by the runner (test/runner.ts): records
 * every test and suite node:test creates, so that the runner can compare what a file registered
 * with what its reporter heard. node:test reports only what it knew of when the event loop first
 * emptied: a test registered after that (e.g. from work that outlived the file's other tests)
 * still runs, but nothing reports it and the exit code ignores it. Issue 16: a describe placed
 * after a conformance suite once counted as passing without being reported.
 *
 * node:test's Test is an AsyncResource of type 'Test' (Node 20 to 24); an init hook sees each
 * one as it is constructed. Its fields (name, nesting, parent, hookType) are node:test's own and
 * are set after the hook runs, so they are read at exit. A resource without them is reported as
 * unreadable rather than skipped, so that a Node that changes them fails loudly, not silently.
 */
import { createHook } from 'node:async_hooks';
import fs from 'node:fs';

/** One line per registered test or suite, in the file the runner names. */
export interface RegisteredLine {
  name: string;
  nesting: number;
  /** Registered once node:test had already printed its summary: it cannot be reported. */
  afterSummary: boolean;
}

interface TestLike {
  name?: unknown;
  nesting?: unknown;
  parent?: TestLike | null;
  hookType?: unknown;
  reported?: unknown;
}

// Read and removed at once: the processes a test starts (bridges, which refuse unknown PODBRIDGE_*
// settings, the fake API server) inherit the environment, and only this process records.
const out = process.env.PB_TEST_REGISTRY;
delete process.env.PB_TEST_REGISTRY;
if (out) {
  const seen: Array<{ test: TestLike; afterSummary: boolean }> = [];
  let root: TestLike | null = null;
  createHook({
    init(_id, type, _trigger, resource) {
      if (type !== 'Test') return;
      // The root is the first Test without a parent that is not a hook (hooks have none either);
      // earlier ones are fully built by the time a later one is constructed.
      root ??= seen.find((s) => s.test.parent === null && s.test.hookType === undefined)?.test ?? null;
      seen.push({ test: resource as TestLike, afterSummary: root?.reported === true });
    },
  }).enable();
  process.on('exit', () => {
    const lines: string[] = [];
    for (const { test, afterSummary } of seen) {
      if (test.parent === null || typeof test.hookType === 'string') continue; // the root; hooks
      const line: RegisteredLine =
        typeof test.name === 'string' && typeof test.nesting === 'number'
          ? { name: test.name, nesting: test.nesting, afterSummary }
          : { name: '(a test this Node.js does not describe as expected: update test/support/registered-tests.ts)', nesting: -1, afterSummary };
      lines.push(JSON.stringify(line));
    }
    fs.writeFileSync(out, lines.map((l) => `${l}\n`).join(''));
  });
}

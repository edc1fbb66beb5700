/**
 * The test runner itself: a file that hangs is stopped at its budget, the run fails, and the
 * output says which test was running and what held the process (issue: a hung run used to cost
 * ten minutes and say nothing).
 */
// test-budget: file 180 s, test 90 s
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import crypto from 'node:crypto';
import { compiled, REPO } from '../helpers/paths.ts';
import { staleSources } from '../support/stale-build.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-runner-test-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Asynchronous, so that this file's own reporter is heard while the inner runner works. */
function runRunner(name: string, body: string, budget = '20,2'): Promise<{ code: number | null; out: string }> {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `import { test } from 'node:test';\n${body}\n`);
  return new Promise((resolve) => {
    execFile(process.execPath, [compiled('test/runner.ts'), '--budget', budget, file], { cwd: REPO, encoding: 'utf8', timeout: 80_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, out: stdout + stderr });
    });
  });
}

// Concurrently: each case waits on budgets and timers of its own inner runner.
describe('test runner', { concurrency: true }, () => {
  it('stops a test that waits forever at the per-test budget, naming it and what kept the process alive', async () => {
    const r = await runRunner(
      'waits.test.mjs',
      `test('fine', () => {});\ntest('waits forever', () => new Promise(() => { setInterval(() => {}, 60_000); }));\ntest('never reached', () => {});`,
    );
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /TIMEOUT .*waits\.test\.mjs: test "waits forever" ran over the per-test budget of 2 s/);
    assert.match(r.out, /running: waits forever \(line 3\)/);
    assert.match(r.out, /finished: pass fine/);
    assert.match(r.out, /handles keeping it alive: .*timer \(fires in \d+ ms\)/);
    assert.match(r.out, /^1 passed, 1 failed$/m);
  });

  it('stops a busy loop and says the process never yielded', async () => {
    // A loop that never yields also starves the reporter, so the file budget is what stops it.
    const r = await runRunner('spins.test.mjs', `function spin() { for (;;) {} }\ntest('spins', () => spin());`, '5,2');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /the file ran over its budget of 5 s/);
    assert.match(r.out, /its JavaScript thread is running without yielding to the event loop/);
    assert.match(r.out, /^0 passed, 1 failed$/m);
  });

  it('a file that stays alive after its last test is stopped at the file budget', async () => {
    const r = await runRunner('lingers.test.mjs', `test('done', () => { setInterval(() => {}, 1000); });`, '4,3');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /the file ran over its budget of 4 s/);
    assert.match(r.out, /running: no test had started/);
    assert.match(r.out, /^1 passed, 1 failed$/m);
  });

  it('a file whose main thread never reaches the event loop is stopped at the start budget, with its native stack', async () => {
    // What issue 16's hang looked like from outside: no reporter event at all, no report possible.
    // Atomics.wait parks the main thread on a futex, as that deadlock did.
    const r = await runRunner('blocked.test.mjs', `Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);\ntest('never', () => {});`, '40,30,3');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /its reporter heard nothing within \d+ s and its main thread has used no CPU for 5 s: it is stuck/);
    assert.match(r.out, /native stack of its main thread \(gdb\):\n\s+#0 /);
    assert.match(r.out, /^0 passed, 1 failed$/m);
  });

  it('a file that outlives its last test says what kept it alive, and passes', async () => {
    const r = await runRunner('lingers-a-while.test.mjs', `test('done', () => { setTimeout(() => {}, 9_000); });`, '30,5');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /LINGER .*lingers-a-while\.test\.mjs: the process ran \d+\.\d s after its last test .*handles keeping it alive: timer \(fires in \d+ ms\)/);
    assert.match(r.out, /^1 passed, 0 failed$/m);
  });

  it('a file whose tests were registered after node:test printed its summary fails, naming them (issue 16)', async () => {
    // Once the event loop has emptied, node:test reports its summary and stops; a describe
    // registered after that still runs, unreported, and the process exits 0.
    const r = await runRunner(
      'late.test.mjs',
      [
        `import { describe, it } from 'node:test';`,
        `test('early', () => {});`,
        `process.once('beforeExit', () => setTimeout(() => describe('late suite', () => { it('late one', () => {}); it('late two', () => {}); }), 10));`,
      ].join('\n'),
    );
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /FAIL .*late\.test\.mjs: 3 of the 4 tests and suites it registered were never reported, so they count for nothing \(issue 16\) \(some were registered after node:test had printed its summary[^)]*\): "late suite", "late one", "late two"/);
    assert.match(r.out, /^1 passed, 1 failed$/m);
  });

  it('every test it registered reported, a file with suites, subtests and skips passes', async () => {
    const r = await runRunner(
      'nested.test.mjs',
      [
        `import { describe, it } from 'node:test';`,
        `describe('outer', () => { describe('inner', () => { it('same name', () => {}); }); it('same name', () => {}); it.skip('skipped', () => {}); });`,
        `test('with subtests', async (t) => { await t.test('sub', () => {}); });`,
        `describe('async body', async () => { await new Promise((r) => setTimeout(r, 50)); it('registered after an await in its suite', () => {}); });`,
      ].join('\n'),
    );
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /never reported/);
    assert.match(r.out, /^5 passed, 0 failed, 1 skipped$/m);
  });

  it('passing and failing tests are counted in the closing line', async () => {
    const r = await runRunner('mixed.test.mjs', `test('a', () => {});\ntest('b', () => { throw new Error('boom'); });\ntest.skip('c', () => {});`);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /mixed\.test\.mjs: b: boom/);
    assert.match(r.out, /^1 passed, 1 failed, 1 skipped$/m);
  });
});

describe('stale build check', () => {
  const sha = (text: string) => crypto.createHash('sha256').update(text).digest('hex');
  function project(files: Record<string, string>, recorded: Record<string, string>, extra: object = {}): { info: string; repo: string } {
    const repo = fs.mkdtempSync(path.join(dir, 'project-'));
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(repo, name)), { recursive: true });
      fs.writeFileSync(path.join(repo, name), text);
    }
    fs.mkdirSync(path.join(repo, 'build'));
    const names = Object.keys(recorded);
    const info = path.join(repo, 'build/.tsbuildinfo');
    // As tsc 5.x writes it: names relative to the build info, an object or a bare hash per file.
    fs.writeFileSync(info, JSON.stringify({ fileNames: names.map((n) => `../${n}`), fileInfos: names.map((n, i) => (i % 2 ? sha(recorded[n]!) : { version: sha(recorded[n]!) })), ...extra }));
    return { info, repo };
  }

  it('a build compiled from the sources as they are is not stale', () => {
    const p = project({ 'src/a.ts': 'a', 'test/a.test.ts': 'b', 'node_modules/x/index.d.ts': 'new' }, { 'src/a.ts': 'a', 'test/a.test.ts': 'b', 'node_modules/x/index.d.ts': 'old' });
    assert.deepEqual(staleSources(p.info, p.repo), []);
  });

  it('a test file changed since the build (a describe added) makes it stale, by name', () => {
    const p = project({ 'src/a.ts': 'a', 'test/conformance/local.test.ts': "conformance(h);\ndescribe('added', () => {});\n" }, { 'src/a.ts': 'a', 'test/conformance/local.test.ts': 'conformance(h);\n' });
    assert.deepEqual(staleSources(p.info, p.repo), ['test/conformance/local.test.ts']);
  });

  it('files tsc has not emitted yet make it stale; no build info, nothing to compare', () => {
    const p = project({ 'src/a.ts': 'a' }, { 'src/a.ts': 'a' }, { affectedFilesPendingEmit: [1] });
    assert.equal(staleSources(p.info, p.repo).length, 1);
    assert.deepEqual(staleSources(path.join(dir, 'no-such.tsbuildinfo'), p.repo), []);
  });

  it("this checkout's build records each source by the sha256 of its text (the format the check reads)", () => {
    // Guards the check against a TypeScript that records something else: it would find nothing stale, ever.
    const info = JSON.parse(fs.readFileSync(compiled('.tsbuildinfo'), 'utf8')) as { fileNames: string[]; fileInfos: Array<string | { version: string }> };
    const i = info.fileNames.indexOf('../test/support/stale-build.ts');
    assert.ok(i >= 0, 'test/support/stale-build.ts is in build/.tsbuildinfo');
    const entry = info.fileInfos[i]!;
    assert.equal(typeof entry === 'string' ? entry : entry.version, sha(fs.readFileSync(path.join(REPO, 'test/support/stale-build.ts'), 'utf8')));
  });
});

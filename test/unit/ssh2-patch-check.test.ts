/**
 * The start-up check that the installed ssh2 carries our patches (src/ssh/ssh2-patches.ts): the
 * real install passes; a copy of it with patches reversed by `patch -R` (the very files in
 * patches/) is refused naming them, and the real CLI started on such a copy exits with one line
 * that says to run npm ci. Every patch in patches/ must have a marker, so a new one cannot be
 * forgotten.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { assertSsh2Patched, inspectSsh2, installedSsh2Root, SSH2_PATCH_MARKERS, SSH2_PATCHED_VERSION } from '../../src/ssh/ssh2-patches.ts';
import { CODE, REPO } from '../helpers/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-ssh2-check-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const patchFiles = fs.readdirSync(path.join(REPO, 'patches')).filter((f) => f.startsWith('ssh2+')).sort();

/** A node_modules/ssh2 copy under `dir` with the named patches reversed (newest first). */
function unpatchedCopy(dir: string, reverse: string[]): string {
  const root = path.join(dir, 'node_modules/ssh2');
  fs.cpSync(installedSsh2Root(), root, { recursive: true });
  for (const n of [...reverse].sort().reverse()) {
    const file = patchFiles.find((f) => f.includes(`+${n}+`));
    assert.ok(file, `no patch ${n}`);
    execFileSync('patch', ['-R', '-p1', '-s', '-d', dir, '-i', path.join(REPO, 'patches', file)]);
  }
  return root;
}

function thrown(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('no error');
}

describe('ssh2 patch check', () => {
  it('the installed ssh2 has every patch', () => {
    assert.deepEqual(inspectSsh2(installedSsh2Root()), { version: SSH2_PATCHED_VERSION, missing: [] });
    assertSsh2Patched();
  });

  it('every patch in patches/ is for the checked version and has a marker', () => {
    assert.ok(patchFiles.length >= 7);
    for (const f of patchFiles) {
      const m = /^ssh2\+([^+]+)\+(\d{3})\+/.exec(f);
      assert.ok(m, f);
      assert.equal(m[1], SSH2_PATCHED_VERSION, f);
      assert.ok(SSH2_PATCH_MARKERS.some((x) => x.patch === m[2]), `patch ${m[2]} (${f}) has no marker in src/ssh/ssh2-patches.ts`);
    }
  });

  it('a copy without patches 006 and 007 is refused naming them and npm ci, in one line', () => {
    const root = unpatchedCopy(path.join(tmp, 'lib-check'), ['006', '007']);
    assert.deepEqual(inspectSsh2(root).missing, ['006', '007']);
    const message = thrown(() => assertSsh2Patched(root));
    assert.equal(message, 'the installed ssh2 lacks our patches 006, 007 (patches/, docs/ssh2-patches.md): run npm ci in the podbridge directory, whose postinstall applies patches/ with patch-package');
  });

  it('each marker is absent once its own patch is reversed', () => {
    // Reversing every patch (newest first) leaves ssh2 1.17.0 as published: no marker may remain.
    const root = unpatchedCopy(path.join(tmp, 'all'), patchFiles.map((f) => /\+(\d{3})\+/.exec(f)![1]!));
    assert.deepEqual(inspectSsh2(root).missing, SSH2_PATCH_MARKERS.map((m) => m.patch));
  });

  it('another ssh2 version is refused naming both versions', () => {
    const root = path.join(tmp, 'other/node_modules/ssh2');
    fs.cpSync(installedSsh2Root(), root, { recursive: true });
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ ...pkg, version: '1.18.0' }));
    assert.match(thrown(() => assertSsh2Patched(root)), /^the installed ssh2 is 1\.18\.0 but our patches \(patches\/, docs\/ssh2-patches\.md\) are for 1\.17\.0: run npm ci/);
  });

  it('the CLI on an unpatched ssh2 exits 1 with that one line before listening', () => {
    // The compiled bridge beside a node_modules whose ssh2 lacks 007 and everything else is ours.
    const app = path.join(tmp, 'app');
    fs.mkdirSync(path.join(app, 'node_modules'), { recursive: true });
    fs.cpSync(path.join(CODE, 'src'), path.join(app, 'src'), { recursive: true });
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ type: 'module' }));
    for (const name of fs.readdirSync(path.join(REPO, 'node_modules'))) {
      if (name !== 'ssh2' && name !== '.bin') fs.symlinkSync(path.join(REPO, 'node_modules', name), path.join(app, 'node_modules', name));
    }
    unpatchedCopy(app, ['007']);
    const home = path.join(tmp, 'home');
    fs.mkdirSync(home);
    const r = spawnSync(process.execPath, [path.join(app, 'src/cli.js'), 'serve', '--listen', '127.0.0.1:0'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home }, cwd: home, timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, 'podbridge: the installed ssh2 lacks our patch 007 (patches/, docs/ssh2-patches.md): run npm ci in the podbridge directory, whose postinstall applies patches/ with patch-package\n');
  });
});

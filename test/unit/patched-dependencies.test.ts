/**
 * The start-up check that the installed dependencies carry our patches
 * (src/patched-dependencies.ts): the real install passes; a copy of a package with patches
 * reversed by `patch -R` (the very files in patches/) is refused naming them, and the real CLI
 * started on such a copy exits with one line that says to run npm ci. Every patch in patches/,
 * whatever its package, must have a marker, so a new one cannot be forgotten.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { assertPatched, inspectPackage, installedRoot, PATCHED_PACKAGES, patchedPackage } from '../../src/patched-dependencies.ts';
import { CODE, REPO } from '../helpers/paths.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-patch-check-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Every file in patches/ as package, version and number (`@kubernetes+client-node+1.4.0+001+x.patch`). */
const patchFiles = fs
  .readdirSync(path.join(REPO, 'patches'))
  .sort()
  .map((file) => {
    const m = /^(.+)\+(\d+\.\d+\.\d+)\+(\d{3})\+[^+]+\.patch$/.exec(file);
    assert.ok(m, `${file}: not named package+version+NNN+what.patch`);
    return { file, name: m[1]!.replace('+', '/'), version: m[2]!, patch: m[3]! };
  });
const ssh2 = patchedPackage('ssh2');

/** A node_modules/NAME copy under `dir` with the named patches reversed (newest first): all of
 *  ssh2 (the CLI runs on it), and of the large packages only package.json and what the package's
 *  patches touch, which is all the check reads. */
function unpatchedCopy(dir: string, name: string, reverse: string[]): string {
  const root = path.join(dir, 'node_modules', name);
  if (name === 'ssh2') fs.cpSync(installedRoot(name), root, { recursive: true });
  else {
    const touched = new Set(['package.json']);
    for (const f of patchFiles.filter((x) => x.name === name)) {
      for (const m of fs.readFileSync(path.join(REPO, 'patches', f.file), 'utf8').matchAll(/^\+\+\+ b\/node_modules\/(?:@[^/]+\/)?[^/]+\/(\S+)$/gm)) touched.add(m[1]!);
    }
    for (const file of touched) {
      if (!fs.existsSync(path.join(installedRoot(name), file))) continue; // a file a patch creates
      fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
      fs.copyFileSync(path.join(installedRoot(name), file), path.join(root, file));
    }
  }
  for (const n of [...reverse].sort().reverse()) {
    const p = patchFiles.find((f) => f.name === name && f.patch === n);
    assert.ok(p, `no patch ${name} ${n}`);
    execFileSync('patch', ['-R', '-p1', '-s', '-d', dir, '-i', path.join(REPO, 'patches', p.file)]);
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

describe('patched dependencies check', () => {
  it('the installed packages have every patch', () => {
    for (const pkg of PATCHED_PACKAGES) assert.deepEqual(inspectPackage(pkg), { version: pkg.version, missing: [] }, pkg.name);
    assertPatched();
  });

  it('every patch in patches/ is for a checked package at its version and has a marker', () => {
    assert.ok(patchFiles.length >= 9);
    for (const f of patchFiles) {
      const pkg = PATCHED_PACKAGES.find((p) => p.name === f.name);
      assert.ok(pkg, `${f.file}: ${f.name} is not in PATCHED_PACKAGES (src/patched-dependencies.ts)`);
      assert.equal(f.version, pkg.version, f.file);
      assert.ok(pkg.markers.some((x) => x.patch === f.patch), `patch ${f.patch} (${f.file}) has no marker in src/patched-dependencies.ts`);
    }
  });

  it('a copy of ssh2 without patches 006 and 007 is refused naming them and npm ci, in one line', () => {
    const root = unpatchedCopy(path.join(tmp, 'lib-check'), 'ssh2', ['006', '007']);
    assert.deepEqual(inspectPackage(ssh2, root).missing, ['006', '007']);
    const message = thrown(() => assertPatched({ ssh2: root }));
    assert.equal(message, 'the installed ssh2 lacks our patches 006, 007 (patches/, docs/ssh2-patches.md): run npm ci in the podbridge directory, whose postinstall applies patches/ with patch-package');
  });

  it('a copy of node-pty or client-node without its patch is refused naming the package and its doc', () => {
    const pty = unpatchedCopy(path.join(tmp, 'pty'), 'node-pty', ['001']);
    assert.equal(thrown(() => assertPatched({ 'node-pty': pty })), 'the installed node-pty lacks our patch 001 (patches/, docs/node-pty-patches.md): run npm ci in the podbridge directory, whose postinstall applies patches/ with patch-package');
    const kube = unpatchedCopy(path.join(tmp, 'kube'), '@kubernetes/client-node', ['001']);
    assert.match(thrown(() => assertPatched({ '@kubernetes/client-node': kube })), /^the installed @kubernetes\/client-node lacks our patch 001 \(patches\/, docs\/client-node-patches\.md\): run npm ci/);
  });

  it('each marker is absent once its own patch is reversed', () => {
    // Reversing every patch of a package (newest first) leaves it as published: no marker may remain.
    for (const pkg of PATCHED_PACKAGES) {
      const own = patchFiles.filter((f) => f.name === pkg.name).map((f) => f.patch);
      const root = unpatchedCopy(path.join(tmp, `all-${pkg.name.replace('/', '+')}`), pkg.name, own);
      assert.deepEqual(inspectPackage(pkg, root).missing, pkg.markers.map((m) => m.patch), pkg.name);
    }
  });

  it('another ssh2 version is refused naming both versions', () => {
    const root = path.join(tmp, 'other/node_modules/ssh2');
    fs.cpSync(installedRoot('ssh2'), root, { recursive: true });
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ ...pkg, version: '1.18.0' }));
    assert.match(thrown(() => assertPatched({ ssh2: root })), /^the installed ssh2 is 1\.18\.0 but our patches \(patches\/, docs\/ssh2-patches\.md\) are for 1\.17\.0: run npm ci/);
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
    unpatchedCopy(app, 'ssh2', ['007']);
    const home = path.join(tmp, 'home');
    fs.mkdirSync(home);
    const r = spawnSync(process.execPath, [path.join(app, 'src/cli.js'), 'serve', '--listen', '127.0.0.1:0'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home }, cwd: home, timeout: 60_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr, 'podbridge: the installed ssh2 lacks our patch 007 (patches/, docs/ssh2-patches.md): run npm ci in the podbridge directory, whose postinstall applies patches/ with patch-package\n');
  });
});

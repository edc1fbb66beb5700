/**
 * Where things are when a test runs. Tests run compiled (`npm test` builds src/, test/ and bench/
 * into build/ first, so no TypeScript loader sits in any process a test starts): `CODE` is that
 * compiled tree, `REPO` the checkout with its non-code files (examples/, docs/).
 */
import fs from 'node:fs';
import path from 'node:path';

/** The compiled tree's root (build/), or the repo itself if this file runs uncompiled. */
export const CODE = path.resolve(import.meta.dirname, '../..');

/** The checkout: the nearest directory above this file with a package.json. */
export const REPO = findUp(CODE);

/** A runnable file of the compiled tree, named by its source path (`src/cli.ts`). */
export function compiled(sourcePath: string): string {
  const js = path.join(CODE, sourcePath.replace(/\.ts$/, '.js'));
  if (!fs.existsSync(js)) throw new Error(`${js} is missing: run the tests with \`npm test\`, which compiles them first`);
  return js;
}

function findUp(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) throw new Error(`no package.json above ${dir}`);
  }
}

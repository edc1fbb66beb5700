// Bundles the browser page (app.ts + xterm.js and its addons, their CSS) into OUTDIR with
// esbuild, at build time: the server serves these files and nothing from a CDN.
// Usage: node src/web/page/bundle.mjs OUTDIR   (npm run build: dist/web/page; npm test: build/src/web/page)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node src/web/page/bundle.mjs OUTDIR');
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: path.join(here, 'app.ts') },
  bundle: true,
  format: 'esm',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: false,
  outdir: out,
  logLevel: 'warning',
  legalComments: 'external',
});
fs.copyFileSync(path.join(here, 'index.html'), path.join(out, 'index.html'));

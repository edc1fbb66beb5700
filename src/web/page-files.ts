/**
 * The page's files, bundled at build time by src/web/page/bundle.mjs next to this module
 * (dist/web/page/, build/src/web/page/) and read once at start-up: the server never touches the
 * file system per request, and a missing bundle stops the start with what to run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PageFiles {
  /** index.html with `__STYLE_NONCE__` where each response puts its nonce. */
  html: string;
  /** By URL path (/assets/app.js): body and content type. */
  assets: ReadonlyMap<string, { body: Buffer; type: string }>;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.png': 'image/png', '.svg': 'image/svg+xml' };

export function pageDir(): string {
  return fileURLToPath(new URL('./page/', import.meta.url));
}

export function loadPageFiles(dir = pageDir()): PageFiles {
  const index = path.join(dir, 'index.html');
  if (!fs.existsSync(index)) throw new Error(`--web-listen: the web page was not built (no ${index}); run npm run build`);
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const name of fs.readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type !== undefined) assets.set(`/assets/${name}`, { body: fs.readFileSync(path.join(dir, name)), type });
  }
  return { html: fs.readFileSync(index, 'utf8'), assets };
}

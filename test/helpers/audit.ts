import fs from 'node:fs';

/**
 * The audit log's events so far. The bridge writes it asynchronously (pino, sync: false), so a
 * test waits for the line it expects (waitUntil) rather than reading once; a line still being
 * written is left for the next read.
 */
export function readAuditEvents(file: string): Array<Record<string, unknown>> {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

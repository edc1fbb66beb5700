/**
 * Whether build/ was compiled from the sources as they are now. The runner runs compiled files
 * only; run without compiling first (`node build/test/runner.js` after an edit), it ran an old
 * build, and tests added to a file since counted for nothing while the run passed (issue 16).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

interface BuildInfo {
  fileNames?: string[];
  fileInfos?: Array<string | { version?: string }>;
  affectedFilesPendingEmit?: unknown[];
}

/**
 * The project sources (src/, test/, bench/ under `repo`) whose content is not what the build was
 * compiled from, by the sha256 that tsc (TypeScript 5.x, `incremental`) records for each input in
 * its .tsbuildinfo; everything while tsc still owes files their output. Empty when there is no
 * record to compare with (a build made some other way).
 */
export function staleSources(buildInfoFile: string, repo: string): string[] {
  let info: BuildInfo;
  try {
    info = JSON.parse(fs.readFileSync(buildInfoFile, 'utf8')) as BuildInfo;
  } catch {
    return [];
  }
  if ((info.affectedFilesPendingEmit?.length ?? 0) > 0) return ['(files tsc has not emitted yet)'];
  const stale: string[] = [];
  (info.fileNames ?? []).forEach((name, i) => {
    const source = path.resolve(path.dirname(buildInfoFile), name);
    const rel = path.relative(repo, source);
    if (!/^(src|test|bench)\//.test(rel)) return;
    const entry = info.fileInfos?.[i];
    const version = typeof entry === 'string' ? entry : entry?.version;
    let text: Buffer;
    try {
      text = fs.readFileSync(source);
    } catch {
      return; // deleted since: nothing runs it
    }
    if (version !== crypto.createHash('sha256').update(text).digest('hex')) stale.push(rel);
  });
  return stale;
}

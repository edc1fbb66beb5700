/**
 * The YAML text of a policy, kept with its syntax tree and line index so that a problem found
 * anywhere later (zod's shape check, a duplicate key, an unknown group) can be reported at the
 * line of the field it is about.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { IssuePath, PolicyIssue } from './policy-errors.ts';

export interface YamlSource {
  readonly file: string;
  readonly doc: Document;
  readonly lines: LineCounter;
  /** Syntax problems; when there are any, `value` must not be trusted. */
  readonly syntaxIssues: PolicyIssue[];
  /** Plain JS data (Buffer for !!binary, which the schema then refuses). */
  readonly value: unknown;
}

export function readYaml(text: string, file: string): YamlSource {
  const lines = new LineCounter();
  // YAML 1.2 core schema: `no`, `on` and `0755` stay strings/decimals, unlike YAML 1.1.
  // uniqueKeys: two `shell:` keys in one rule must be an error, not "the last one wins".
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true, version: '1.2', schema: 'core' });
  const syntaxIssues: PolicyIssue[] = [...doc.errors, ...doc.warnings].map((e) => ({
    file,
    line: e.linePos?.[0]?.line ?? 1,
    path: [],
    message: `YAML: ${firstLine(e.message)}`,
  }));
  let value: unknown = null;
  if (syntaxIssues.length === 0) {
    try {
      // Bounded alias expansion: a "billion laughs" file is refused, not expanded.
      value = doc.toJS({ maxAliasCount: 50 });
    } catch (err) {
      syntaxIssues.push({ file, line: 1, path: [], message: `YAML: ${err instanceof Error ? err.message : String(err)}` });
    }
  }
  return { file, doc, lines, syntaxIssues, value };
}

/**
 * The line of the node at `path`; `at: 'key'` gives the line of the key itself (for unknown
 * fields). A path that does not exist (a missing required field) stops at its deepest existing
 * ancestor, which is where the field should have been written.
 */
export function lineOf(src: YamlSource, path: IssuePath, at: 'value' | 'key' = 'value'): number {
  let node: unknown = src.doc.contents;
  let line = lineAt(src, node) ?? 1;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      const keyLine = lineAt(src, pair.key);
      if (last && at === 'key') return keyLine ?? line;
      node = pair.value;
      // `namespaces:` with nothing after it has no value node: point at the key.
      line = lineAt(src, node) ?? keyLine ?? line;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (item === undefined) break;
      node = item;
      line = lineAt(src, node) ?? line;
    } else {
      break;
    }
  }
  return line;
}

export function issueAt(src: YamlSource, path: IssuePath, message: string, at: 'value' | 'key' = 'value'): PolicyIssue {
  return { file: src.file, line: lineOf(src, path, at), path, message };
}

function lineAt(src: YamlSource, node: unknown): number | null {
  if (node === null || typeof node !== 'object' || !('range' in node)) return null;
  const range = (node as { range?: unknown }).range;
  if (!Array.isArray(range) || typeof range[0] !== 'number') return null;
  return src.lines.linePos(range[0]).line;
}

/** yaml's pretty messages end with ` at line N, column M:` and a code excerpt: the line
 *  number is already in the issue, and the excerpt would break the one-line-per-problem form. */
function firstLine(message: string): string {
  const head = message.split('\n', 1)[0] ?? message;
  return head.replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * A policy file that cannot be used. Every problem names the file, the line and the field
 * (`policy.yaml:14: rules[2].namespaces[0]: ...`), the way a compiler does, so the person who
 * edits the file goes straight to the mistake. All problems are reported at once: fixing a
 * security policy one error per restart is how people give up and write `*`.
 */

export type IssuePath = ReadonlyArray<string | number>;

export interface PolicyIssue {
  readonly file: string;
  /** 1-based; the line of the field, or of its nearest enclosing field when it is missing.
   *  0: about the whole file (it cannot be read). */
  readonly line: number;
  readonly path: IssuePath;
  readonly message: string;
}

/** More than this and the rest are counted, not listed: a wrong file type gives thousands. */
const MAX_LISTED = 25;

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  readonly file: string;
  readonly issues: readonly PolicyIssue[];

  constructor(file: string, issues: readonly PolicyIssue[]) {
    super(formatIssues(issues));
    this.file = file;
    this.issues = issues;
  }
}

/** `rules[2].namespaces[0]` */
export function formatPath(path: IssuePath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

export function formatIssue(issue: PolicyIssue): string {
  const where = issue.path.length > 0 ? `${formatPath(issue.path)}: ` : '';
  return `${issue.file}:${issue.line > 0 ? `${issue.line}:` : ''} ${where}${issue.message}`;
}

function formatIssues(issues: readonly PolicyIssue[]): string {
  if (issues.length === 0) return 'invalid policy';
  const lines = issues.slice(0, MAX_LISTED).map(formatIssue);
  if (issues.length > MAX_LISTED) lines.push(`... and ${issues.length - MAX_LISTED} more problems`);
  return lines.join('\n');
}

/**
 * Globs on Kubernetes names: `*` is any run of characters (also none, also dots), `?` is exactly
 * one. Nothing else is special, so a pattern reads the same to a security reviewer as to the
 * matcher. Each kind of name has its own alphabet and a pattern outside it is refused at load:
 * `Team-*` could never match a namespace, and silently never matching is how a rule quietly
 * stops protecting anything (or a deny-by-omission is mistaken for an allow).
 *
 * Matching is the classic two-pointer wildcard walk: no regular expressions, worst case
 * O(pattern x name), so a hostile policy cannot make authorization slow.
 */

export type NameKind = 'namespace' | 'pod' | 'container' | 'workload' | 'docker';

/** RFC 1123 label for namespaces and containers; subdomain (dots too) for pod and workload names. */
const ALPHABETS: Readonly<Record<NameKind, { dots: boolean; max: number; describe: string }>> = {
  namespace: { dots: false, max: 63, describe: "lowercase letters, digits and '-'" },
  container: { dots: false, max: 63, describe: "lowercase letters, digits and '-'" },
  pod: { dots: true, max: 253, describe: "lowercase letters, digits, '-' and '.'" },
  workload: { dots: true, max: 253, describe: "lowercase letters, digits, '-' and '.'" },
  // Docker container, Compose project and service names also have uppercase letters and '_'.
  docker: { dots: true, max: 255, describe: "letters, digits, '_', '-' and '.'" },
};

export interface Glob {
  /** The pattern as written in the policy, for messages. */
  readonly source: string;
  /** True when the pattern has no wildcard: compared as a plain string. */
  readonly literal: boolean;
}

/** Why `pattern` is not a valid glob for names of `kind`, or null when it is. */
export function globProblem(pattern: string, kind: NameKind): string | null {
  const { dots, max, describe } = ALPHABETS[kind];
  if (pattern.length === 0) return 'is empty (use "*" for any name)';
  // A pattern longer than any valid name (plus its wildcards) is a paste error, not a glob.
  if (pattern.length > max + 16) return `is ${pattern.length} characters long (a ${kind} name has at most ${max})`;
  for (const ch of pattern) {
    if (kind === 'docker' && ((ch >= 'A' && ch <= 'Z') || ch === '_')) continue;
    const ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch === '-' || ch === '*' || ch === '?' || (dots && ch === '.');
    if (!ok) return `has ${describeChar(ch)}: a ${kind} glob is ${describe}, with '*' and '?' as wildcards`;
  }
  return null;
}

/** Compiles a pattern already checked with globProblem. */
export function compileGlob(pattern: string): Glob {
  return Object.freeze({ source: pattern, literal: !pattern.includes('*') && !pattern.includes('?') });
}

export function globMatch(glob: Glob, name: string): boolean {
  if (glob.literal) return glob.source === name;
  return wildcardMatch(glob.source, name);
}

export function anyGlobMatches(globs: readonly Glob[], name: string): boolean {
  for (const g of globs) if (globMatch(g, name)) return true;
  return false;
}

/** `*` and `?` over UTF-16 code units; both sides are ASCII by construction. */
export function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let resume = 0;
  while (t < text.length) {
    const pc = pattern.charAt(p);
    if (p < pattern.length && (pc === '?' || pc === text.charAt(t))) {
      p++;
      t++;
    } else if (p < pattern.length && pc === '*') {
      // Remember the star; first try letting it match nothing.
      star = p++;
      resume = t;
    } else if (star >= 0) {
      // Mismatch after a star: let the star swallow one more character and retry.
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (pattern.charAt(p) === '*') p++;
  return p === pattern.length;
}

function describeChar(ch: string): string {
  if (ch >= 'A' && ch <= 'Z') return `uppercase '${ch}'`;
  if (ch === '_') return "'_' (use '-')";
  if (ch === '.') return "'.'";
  if (ch === '/') return "'/'";
  if (ch === ' ') return 'a space';
  const cp = ch.codePointAt(0) ?? 0;
  if (cp >= 0x21 && cp <= 0x7e) return `'${ch}'`;
  return `the character U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** sshd's AcceptEnv patterns: which variable names a client may set (ssh/session.ts) and which
 *  patterns the configuration refuses (config.ts). Neither layer owns the other. */

/**
 * Variable-name prefixes the exec wrapper (backends' command.ts) keeps for itself. The wrapper
 * keeps no state in variables a client could set (issue 15), but the names stay reserved, so the
 * configuration refuses `--accept-env` patterns that could match them. Defined here, not in a
 * backend, because config validation needs it and must not reach into a backend.
 */
export const WRAPPER_RESERVED_PREFIXES = ['PODBRIDGE_', 'pb_'] as const;

/** Whether an accept-env glob (`*`, `?`) matches some name that starts with `prefix`. */
export function globCanMatchPrefix(pattern: string, prefix: string): boolean {
  if (prefix === '') return true; // whatever is left of the pattern matches some tail
  if (pattern === '') return false;
  const [p, rest] = [pattern[0], pattern.slice(1)];
  if (p === '*') return globCanMatchPrefix(rest, prefix) || globCanMatchPrefix(pattern, prefix.slice(1));
  if (p === '?' || p === prefix[0]) return globCanMatchPrefix(rest, prefix.slice(1));
  return false;
}

/** sshd-style AcceptEnv matching: `*` and `?` wildcards, case-sensitive. */
export function envAccepted(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(name));
}

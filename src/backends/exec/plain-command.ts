/**
 * For images without /bin/sh (distroless): a command that needs no shell can still run, split
 * into words the way sh would split it (quotes and backslashes), and nothing else. Anything a shell
 * would interpret (pipes, redirections, variables, globs, assignments, several commands) is
 * refused rather than run differently than the user meant: splitting on spaces is the pitfall
 * other bridges fell into, so this is only the fallback where no shell exists.
 */
import { BridgeError } from '../../errors.ts';

const SHELL_SYNTAX = new Set(['|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', '#', '~', '{', '}', '\n']);

/** The words of a plain command, or null when it needs a shell. */
export function plainCommandWords(command: string): string[] | null {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!;
    if (ch === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) return null;
      word += command.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (ch === '"') {
      let j = i + 1;
      for (; j < command.length && command[j] !== '"'; j++) {
        const c = command[j]!;
        if (c === '$' || c === '`') return null; // expansions inside double quotes need a shell
        if (c === '\\' && j + 1 < command.length && '"\\$`\n'.includes(command[j + 1]!)) {
          word += command[++j];
        } else word += c;
      }
      if (j >= command.length) return null;
      inWord = true;
      i = j;
    } else if (ch === '\\') {
      if (i + 1 >= command.length) return null;
      word += command[++i];
      inWord = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if (SHELL_SYNTAX.has(ch)) {
      return null;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) return null;
  // `VAR=value cmd` is an assignment only a shell understands.
  if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0]!)) return null;
  return words;
}

/**
 * What runs in an image without /bin/sh: the plain command's words, or a refusal naming `where`
 * (the container) and what to do; `hint` is the backend's own way to get a shell, if any.
 */
export function directArgv(command: string | null, where: string, opts: { hint?: string; detail?: Record<string, unknown> } = {}): string[] {
  const hint = opts.hint !== undefined ? `, or ${opts.hint}` : '';
  const detail = opts.detail !== undefined ? { detail: opts.detail } : {};
  if (command === null) {
    throw new BridgeError('no-shell', `${where} has no /bin/sh, so there is no shell to open; run a command instead (ssh LOGIN /path/to/program ARGS)${hint}`, detail);
  }
  const words = plainCommandWords(command);
  if (words === null) {
    throw new BridgeError('no-shell', `${where} has no /bin/sh, and this command needs one (pipes, redirections, variables, globs or several commands); run a plain command${hint}`, detail);
  }
  return words;
}

/**
 * sshd runs a command as `$SHELL -c CMD`; with bash, a CMD that is one simple command is exec'd
 * by bash itself, so the program is the terminal's foreground process with no shell above it.
 * dash (Debian's and most images' /bin/sh) never does that: it stays the parent, in the same
 * foreground process group, so a Ctrl-C that the program handles (python3, less, psql) still
 * reaches dash, which then kills itself with SIGINT once the program exits normally: status
 * 130 (Kubernetes) or exit-signal INT (local) where sshd and kubectl report 0.
 *
 * We get bash's behaviour from any POSIX sh by prefixing `exec` when the command is one simple
 * command of an external program: words and quotes only (the same test as for images without a
 * shell), its first word not a shell builtin or keyword (`exec exit 3` would fail, and `echo`
 * would change from the shell's to /bin/echo). Everything else runs exactly as written. The
 * PID stays the same either way (`exec`), so the PID report and the cleanup rules hold.
 */
import { plainCommandWords } from './exec/plain-command.ts';

/** Builtins and keywords of POSIX sh, dash, bash and busybox ash: these must run in the shell. */
const SHELL_WORDS = new Set(
  [
    // POSIX special builtins and keywords
    '.', ':', 'break', 'continue', 'eval', 'exec', 'exit', 'export', 'readonly', 'return', 'set', 'shift', 'times', 'trap', 'unset',
    '!', 'if', 'then', 'else', 'elif', 'fi', 'case', 'esac', 'for', 'while', 'until', 'do', 'done', 'in', 'function', 'select', 'time', '[[', ']]',
    // regular builtins (some also exist as programs that behave differently)
    'alias', 'bg', 'cd', 'command', 'false', 'fc', 'fg', 'getopts', 'hash', 'jobs', 'kill', 'newgrp', 'pwd', 'read', 'true', 'type',
    'ulimit', 'umask', 'unalias', 'wait', 'echo', 'printf', 'test', '[', 'local',
    // bash and busybox ash
    'source', 'declare', 'typeset', 'let', 'enable', 'builtin', 'caller', 'compgen', 'complete', 'compopt', 'dirs', 'disown', 'help',
    'history', 'logout', 'mapfile', 'readarray', 'popd', 'pushd', 'shopt', 'suspend', 'chdir', 'coproc',
  ],
);

/** CMD as the shell should run it: `exec CMD` when that is what bash -c would do, else CMD. */
export function execSimpleCommand(command: string): string {
  const words = plainCommandWords(command);
  // A first word that starts with '-' would be read as an option of `exec` itself (bash has some).
  if (words === null || SHELL_WORDS.has(words[0]!) || words[0]!.startsWith('-')) return command;
  return `exec ${command}`;
}

/**
 * The argv we hand to Kubernetes exec. Exec has no environment field and never sets TERM, so a
 * small POSIX `/bin/sh` wrapper (busybox and dash included) exports TERM and the accepted
 * environment, then replaces itself with what the user asked for:
 *   - a command: `/bin/sh -c "$cmd"`, exactly as sshd runs `shell -c command` (never split);
 *   - no command: a login shell, bash where the image has it, else sh.
 * Every value travels as a positional argument and is only ever expanded inside double quotes,
 * so no value is ever parsed as shell text.
 */
import type { ProcessSpec } from '../backend.ts';
import { execSimpleCommand } from '../simple-command.ts';

/** The wrapper's `$0`, so its own rare error messages say who is talking. */
const WRAPPER_NAME = 'podbridge';

/** Environment variable that marks every process of one session, so a later exec can find the
 *  session (and its process group) to signal or clean it up. */
export const SESSION_TAG_VAR = 'PODBRIDGE_SESSION';

/**
 * The PID report: the first bytes the wrapper writes on stdout, before anything of the user's can
 * run, are `ESC ] podbridge-pid ; PID ; STARTTIME BEL`. The exec stream strips them (they never
 * reach the user) and so learns the PID of the session's main process: the wrapper `exec`s, so it
 * is also the PID of the user's shell or command, and runc made it the leader of its own session.
 * STARTTIME (field 22 of /proc/PID/stat, empty without /proc) tells that process from a later one
 * that reuses its PID. It is shaped as an OSC sequence so that, should it ever reach a terminal
 * (a client other than ours running this wrapper), the terminal ignores it.
 */
export const PID_REPORT_PREFIX = '\x1b]podbridge-pid;';
export const PID_REPORT_END = '\x07';

// A function has its own positional parameters: the wrapper's $1... stay untouched for what
// follows. `read` is a builtin, so this costs no fork.
const REPORT_PID = `pb_report() {
  pb_s=
  { IFS= read -r pb_s <"/proc/$$/stat"; } 2>/dev/null
  pb_s=\${pb_s##*") "}
  set -- $pb_s
  if [ "$#" -ge 20 ]; then shift 19; else set -- ''; fi
  printf '\\033]podbridge-pid;%s;%s\\007' "$$" "$1"
}
pb_report; unset -f pb_report; unset pb_s`;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// The names the wrapper uses for itself (`PODBRIDGE_*`, `pb_*`) are reserved in
// env-patterns.ts (WRAPPER_RESERVED_PREFIXES). After the exports it keeps no state in variables
// at all: a client that may set a variable the wrapper reads could change what runs, bypassing a
// forced command (issue 15).

/** Ends the KEY=VALUE arguments: never one of them (each holds a '='). */
const END_OF_ENV = '--';

// Each KEY=VALUE argument is exported verbatim (the name was validated here, the value is never
// re-parsed) until the END_OF_ENV marker. No counter variable: an exported name can change
// nothing the loop depends on.
const EXPORT_ENV = `while [ "$1" != ${END_OF_ENV} ]; do export "$1"; shift; done
shift`;

// With a TTY the API server may apply our first resize after the process started (seen through
// v4 endpoints), and a program that reads its size at once would see 0x0. Wait, bounded to about
// a second, until the terminal has a size. Without stty (or fractional sleep) we skip or cap the
// wait rather than delay every login. The count is the function's own positional parameters,
// not a variable the user's environment could hold.
const WAIT_FOR_TTY_SIZE = `pb_wait_size() {
  set -- 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20
  while [ "$#" -gt 0 ]; do
    case $(stty size 2>/dev/null) in
      ''|0\\ *|*\\ 0) ;;
      *) return 0 ;;
    esac
    sleep 0.05 2>/dev/null || { sleep 1; return 0; }
    shift
  done
}
if command -v stty >/dev/null 2>&1; then pb_wait_size; fi
unset -f pb_wait_size`;

const RUN_COMMAND = `exec /bin/sh -c "$1"`;

const RUN_LOGIN_SHELL = `if command -v bash >/dev/null 2>&1; then exec bash -l; fi
exec /bin/sh -l`;

export interface ExecCommand {
  argv: string[];
  /** Environment names refused because they are not valid shell names or hold a NUL byte. */
  droppedEnv: string[];
}

export interface ExecCommandOptions {
  /** Exported as PODBRIDGE_SESSION so a later exec can find this session's processes. */
  sessionTag?: string;
  /** Write the PID report (see PID_REPORT_PREFIX) first thing on stdout; the reader must strip it. */
  reportPid?: boolean;
}

export function buildExecCommand(spec: ProcessSpec, options: ExecCommandOptions = {}): ExecCommand {
  const assignments: string[] = [];
  const droppedEnv: string[] = [];
  const add = (name: string, value: string): void => {
    // A NUL cannot cross argv; an invalid name would make `export` fail or mean something else.
    if (!ENV_NAME.test(name) || value.includes('\0')) droppedEnv.push(name);
    else assignments.push(`${name}=${value}`);
  };

  if (spec.tty !== null) add('TERM', spec.tty.term);
  for (const [name, value] of Object.entries(spec.env)) {
    // TERM belongs to the pty request when there is one, as with sshd.
    if (name === 'TERM' && spec.tty !== null) continue;
    add(name, value);
  }
  if (options.sessionTag !== undefined) add(SESSION_TAG_VAR, options.sessionTag);

  // The report goes first: with a TTY nothing typed can be echoed before it (the exec stream
  // holds stdin back until it has seen the report).
  const steps = options.reportPid === true ? [REPORT_PID, EXPORT_ENV] : [EXPORT_ENV];
  // A 0x0 pty-req (ssh -tt without a local terminal) will never get a size: do not wait for one.
  if (spec.tty !== null && spec.tty.cols > 0 && spec.tty.rows > 0) steps.push(WAIT_FOR_TTY_SIZE);
  steps.push(spec.command === null ? RUN_LOGIN_SHELL : RUN_COMMAND);

  const argv = ['/bin/sh', '-c', steps.join('\n'), WRAPPER_NAME, ...assignments, END_OF_ENV];
  // A simple command is exec'd by the shell, as bash -c does (simple-command.ts).
  if (spec.command !== null) argv.push(execSimpleCommand(spec.command));
  return { argv, droppedEnv };
}

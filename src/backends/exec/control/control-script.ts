/**
 * The script the bridge runs in a SECOND exec into the session's container to signal or end the
 * session's processes. Kubernetes exec has no signal channel, and closing an exec stream kills
 * nothing, so this is the only way short of an agent baked into the image. It needs nothing but
 * a POSIX `/bin/sh` (dash, bash, busybox ash) and `/proc`; `grep` and `sleep` help when present.
 *
 * Which processes are the session's (each rule alone misses some; together they miss only a
 * process that cleared its environment AND left both the session and its parent):
 *   - the main process: the PID the wrapper reported (command.ts), checked against its start time
 *     so a reused PID is never taken for it;
 *   - every member of a session one of ours created: runc starts each exec as the leader of a new
 *     session, and background jobs, nested shells, processes in their own process group and
 *     double-forked ones reparented to PID 1 all keep that session ID (field 6 of /proc/PID/stat).
 *     A session counts only when its LEADER is ours, so a marked process that ended up in someone
 *     else's session (a shell in a tmux server another session started) never drags that
 *     session's other processes in;
 *   - every process whose environment carries PODBRIDGE_SESSION=<tag> (daemons that called
 *     setsid); one `grep -l` over /proc/*\/environ, as the shell cannot read NUL-separated files;
 *   - every descendant of the above, whatever session or group it moved to.
 * Never: PID 1, the session of PID 1, this script's own session, zombies (they cannot be
 * signalled; their parent reaps them).
 *
 * terminate: HUP (and CONT, so stopped jobs see it), wait up to the grace period for them to go,
 * then KILL what is left, looking again each round for processes forked meanwhile.
 * signal: one signal to the main process's process group, as sshd's killpg() of the session's
 * child: a `sh -c` that did not exec its last command does not pass a signal on to it. With a TTY
 * the shell's jobs have groups of their own and are not touched, as with sshd.
 *
 * The last line on stdout reports what happened; nothing of it reaches the user.
 */

export const CONTROL_SCRIPT = `mode=$1 tag=$2 leader=$3 start=$4 arg=$5
marker="PODBRIDGE_SESSION=$tag"
proc=yes
[ -r "/proc/$$/stat" ] || proc=no

# Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses).
st() {
  s=
  { IFS= read -r s <"/proc/$1/stat"; } 2>/dev/null
  s=\${s##*") "}
  set -- $s
  [ "$#" -ge 4 ] || return 1
  state=$1 ppid=$2 pgrp=$3 sid=$4 stime=
  if [ "$#" -ge 20 ]; then shift 19; stime=$1; fi
}

self_sid=x init_sid=x
st "$$" && self_sid=$sid
st 1 && init_sid=$sid

has() { case $1 in *" $2 "*) return 0 ;; esac; return 1; }
count() { set -- $1; echo "$#"; }

# -z -x: the whole NUL-terminated entry, so no other variable's value can match. A grep without
# -z (old busybox) matches a substring, which is still exact for our fixed-length tags.
grep_ok=no gz=
if command -v grep >/dev/null 2>&1; then
  grep_ok=yes
  printf 'a\\0' | grep -qzx a 2>/dev/null && gz=-zx
fi
marked() {
  m=" "
  [ "$grep_ok" = yes ] || return 0
  for f in $(grep -lsF $gz -e "$marker" /proc/[0-9]*/environ 2>/dev/null); do
    f=\${f#/proc/}
    m="$m\${f%/environ} "
  done
}

lead= lead_state=unknown
find_leader() {
  lead=
  if [ -n "$leader" ]; then
    lead_state=gone
    if st "$leader" && { [ -z "$start" ] || [ "$stime" = "$start" ]; }; then lead=$leader lead_pgrp=$pgrp lead_state=ok; fi
    return 0
  fi
  for p in $m; do
    if st "$p" && [ "$sid" = "$p" ]; then lead=$p lead_pgrp=$pgrp lead_state=marker; return 0; fi
  done
}

collect() {
  marked
  find_leader
  sids=" "
  # The main process has exited: its session lives on while members remain, and its ID cannot
  # be handed out again meanwhile (see signal below), so they are still ours.
  if [ -z "$lead" ] && [ -n "$leader" ] && [ ! -e "/proc/$leader" ]; then sids=" $leader "; fi
  for p in $lead $m; do
    case $p in "$self_sid"|"$init_sid") continue ;; esac
    if st "$p" && [ "$sid" = "$p" ]; then has "$sids" "$p" || sids="$sids$p "; fi
  done
  found=" " all=
  for d in /proc/[0-9]*; do
    p=\${d#/proc/}
    case $p in 1|"$$") continue ;; esac
    st "$p" || continue
    [ "$state" = Z ] && continue
    [ "$sid" = "$self_sid" ] && continue
    all="$all $p $ppid"
    if has "$sids" "$sid" || has " $lead$m" "$p"; then found="$found$p "; fi
  done
  n=0 grew=1
  while [ "$grew" = 1 ] && [ "$n" -lt 64 ]; do
    grew=0 n=$((n + 1))
    set -- $all
    while [ "$#" -ge 2 ]; do
      if ! has "$found" "$1" && has "$found" "$2"; then found="$found$1 " grew=1; fi
      shift 2
    done
  done
}

alive() {
  left=" "
  for p in $found; do
    if st "$p" && [ "$state" != Z ]; then left="$left$p "; fi
  done
}

case $mode in
signal)
  marked
  find_leader
  r=no-leader to=none
  if [ -z "$lead" ] && [ -n "$leader" ] && [ ! -e "/proc/$leader" ]; then
    # The main process is gone but its group lives on (a job holding the output open): sshd's
    # killpg() still reaches it. The kernel does not hand out a PID again while it names a live
    # group or session, so members of session $leader are ours. (When a process with that PID
    # exists but is not ours, the PID was reused: the old group is empty.)
    for d in /proc/[0-9]*; do
      p=\${d#/proc/}
      if st "$p" && [ "$pgrp" = "$leader" ] && [ "$sid" = "$leader" ] && [ "$state" != Z ]; then
        lead=$leader lead_pgrp=$leader lead_state=group-only
        break
      fi
    done
  fi
  if [ -n "$lead" ] && [ "$lead_pgrp" = "$lead" ]; then
    # Its process group, as sshd's killpg(): \`sh -c 'a; b'\` forwards nothing to its child.
    # dash wants -- before a negative PID; busybox refuses --.
    to=group r=failed
    { kill -s "$arg" -- "-$lead" || kill -s "$arg" "-$lead"; } 2>/dev/null && r=sent
  elif [ -n "$lead" ]; then
    to=pid r=failed
    kill -s "$arg" "$lead" 2>/dev/null && r=sent
  fi
  echo "podbridge-control signal result=$r pid=\${lead:-none} to=$to leader=$lead_state grep=$grep_ok proc=$proc"
  ;;
terminate)
  grace=$arg tick=0.1 tick_ms=100
  if ! sleep 0.01 2>/dev/null; then
    tick=
    command -v sleep >/dev/null 2>&1 && tick=1 tick_ms=1000
  fi
  collect
  first=$lead_state
  total=$(count "$found")
  if [ "$found" != " " ]; then
    kill -s HUP $found 2>/dev/null
    kill -s CONT $found 2>/dev/null
    waited=0
    while [ -n "$tick" ] && [ "$waited" -lt "$grace" ]; do
      alive
      [ "$left" = " " ] && break
      sleep "$tick"
      waited=$((waited + tick_ms))
    done
  fi
  killed=0 r=0
  while [ "$r" -lt 3 ]; do
    r=$((r + 1))
    collect
    [ "$found" = " " ] && break
    [ "$r" = 1 ] && killed=$(count "$found")
    kill -s KILL $found 2>/dev/null
    [ -n "$tick" ] && sleep 0.05 2>/dev/null
  done
  collect
  echo "podbridge-control terminate found=$total killed=$killed left=$(count "$found") leader=$first grep=$grep_ok proc=$proc"
  ;;
*)
  echo "podbridge-control: unknown mode $mode" >&2
  exit 2
  ;;
esac
`;

/** `$0` of the control script, so `ps` in the container says what it is. */
export const CONTROL_SCRIPT_NAME = 'podbridge-control';

export interface Leader {
  pid: number;
  /** Field 22 of /proc/PID/stat; null when the wrapper could not read it. */
  startTime: string | null;
}

export function controlArgv(mode: 'signal' | 'terminate', tag: string, leader: Leader | null, arg: string): string[] {
  return ['/bin/sh', '-c', CONTROL_SCRIPT, CONTROL_SCRIPT_NAME, mode, tag, leader === null ? '' : String(leader.pid), leader?.startTime ?? '', arg];
}

export interface ControlReport {
  mode: string;
  fields: Record<string, string>;
}

/** The script's last report line, or null when it printed none (it did not run to the end). */
export function parseControlReport(stdout: string): ControlReport | null {
  const lines = stdout.split('\n').filter((l) => l.startsWith(`${CONTROL_SCRIPT_NAME} `));
  const line = lines[lines.length - 1];
  if (line === undefined) return null;
  const [, mode = '', ...pairs] = line.trim().split(/\s+/);
  const fields: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq > 0) fields[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return { mode, fields };
}

/**
 * Linux signal numbers (x86, arm, arm64, s390x, ppc, riscv: every architecture Kubernetes nodes
 * commonly run; MIPS, Alpha and SPARC number some differently). Not os.constants: the bridge may
 * run on another OS than the nodes. RFC 4254 names the first thirteen; the rest are accepted
 * because `kill -s` knows them everywhere.
 */
export const LINUX_SIGNALS: Readonly<Record<string, number>> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  ABRT: 6,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
  CONT: 18,
  STOP: 19,
  TSTP: 20,
  WINCH: 28,
};

/** The SSH name (no SIG prefix, any case) as `kill -s` wants it, or null for one we do not send. */
export function normalizeSignal(name: string): string | null {
  const upper = name.toUpperCase().replace(/^SIG/, '');
  return Object.prototype.hasOwnProperty.call(LINUX_SIGNALS, upper) ? upper : null;
}

/** Signals whose default action ends the process: only these can explain an exit of 128+N. */
export const TERMINATING_SIGNALS: ReadonlySet<string> = new Set(['HUP', 'INT', 'QUIT', 'ILL', 'ABRT', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM', 'TERM']);

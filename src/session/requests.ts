/**
 * What a session collects from its front door before anything runs (a terminal, environment,
 * what to run), with the caps that keep it bounded. Front-door neutral: SSH's pty-req/env and the
 * browser's URL both arrive here.
 */
import type { TtySpec } from '../backends/backend.ts';
import { envAccepted } from '../env-patterns.ts';
import type { Logger } from '../log.ts';
import type { SshRequest } from '../policy/index.ts';

/**
 * What one session may make the bridge hold before anything runs (docs/security.md adds these up
 * per connection). ssh2 caps a packet at 35000 bytes, so one request is small; it is the number
 * of requests that must be bounded: env requests were stored without limit, and a client could
 * fill the bridge's heap with LC_* variables before any authorization. sshd refuses env beyond
 * 128 variables too.
 */
export const REQUEST_LIMITS = Object.freeze({
  envVars: 128,
  /** Names plus values of the accepted variables. */
  envBytes: 64 * 1024,
  termBytes: 128,
  commandBytes: 32 * 1024,
  subsystemBytes: 64,
});

/** Finds the image's sftp-server, as sshd's `Subsystem sftp` would run it. */
export const SFTP_SERVER_COMMAND = [
  'for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server;',
  'do [ -x "$p" ] && exec "$p"; done;',
  'command -v sftp-server >/dev/null 2>&1 && exec sftp-server;',
  // busybox images have neither sftp-server nor scp; tar over ssh works wherever stdin EOF arrives.
  'echo "podbridge: no sftp-server in this container; install openssh-sftp-server in the image, or copy with tar: tar c FILES | ssh TARGET \'tar x -C DIR\' (scp -O works where the image has scp)" >&2; exit 127',
].join(' ');

/** What the client asked to run: SSH's shell/exec/subsystem requests, the browser's URL. */
export type RunRequest = SshRequest;

/** The session kind as logs, audit and metrics name it. */
export function runKind(r: RunRequest): string {
  return r.kind === 'subsystem' ? 'subsystem:sftp' : r.kind;
}

/** Environment a client set, bounded by REQUEST_LIMITS and the accept list (sshd's AcceptEnv). */
export class EnvRequests {
  readonly values: Record<string, string> = {};
  private bytes = 0;
  /** The first refusal beyond a cap is a warning; the flood after it is debug. */
  private capWarned = false;

  constructor(
    private readonly acceptEnv: readonly string[],
    private readonly log: Logger,
  ) {}

  /** True when accepted. Only names on the accept list: PATH or LD_PRELOAD must never be set. */
  set(name: string, value: string): boolean {
    if (!(/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && envAccepted(name, this.acceptEnv))) {
      this.log.debug({ name: String(name).slice(0, 64) }, 'env request refused (not in accept list)');
      return false;
    }
    const previous = Object.hasOwn(this.values, name) ? Buffer.byteLength(name) + Buffer.byteLength(this.values[name]!) : 0;
    const bytes = this.bytes - previous + Buffer.byteLength(name) + Buffer.byteLength(value);
    const count = Object.keys(this.values).length + (previous > 0 ? 0 : 1);
    if (count > REQUEST_LIMITS.envVars || bytes > REQUEST_LIMITS.envBytes) {
      const fields = { name, vars: count - 1, bytes: this.bytes, limits: `${REQUEST_LIMITS.envVars} variables, ${REQUEST_LIMITS.envBytes} bytes` };
      this.log[this.capWarned ? 'debug' : 'warn'](fields, 'env request refused: over the per-session cap');
      this.capWarned = true;
      return false;
    }
    this.values[name] = value;
    this.bytes = bytes;
    return true;
  }
}

/** A terminal request, or why it is refused (logged; the session goes on without one, as sshd). */
export function checkTty(tty: TtySpec, permitsPty: boolean, log: Logger): TtySpec | null {
  // no-pty (authorized_keys) or a certificate without permit-pty: refuse the pty as sshd does.
  if (!permitsPty) {
    log.info('pty refused: the credential does not permit a pty');
    return null;
  }
  if (Buffer.byteLength(tty.term ?? '') > REQUEST_LIMITS.termBytes) {
    log.warn({ bytes: Buffer.byteLength(tty.term), limit: REQUEST_LIMITS.termBytes }, 'pty refused: terminal name too long');
    return null;
  }
  return { term: tty.term || 'xterm', cols: tty.cols, rows: tty.rows };
}

/**
 * An SSH session request (shell, exec, the sftp subsystem) -> what actually runs and which
 * action authorize() must check. With a forced command (`command=` on the key, or a
 * certificate's force-command) every request runs that command instead, exactly as sshd does,
 * and the client's own request is only passed on in SSH_ORIGINAL_COMMAND.
 */
import type { Identity } from './identities.ts';
import type { Action } from './types.ts';

export type SshRequest = { kind: 'shell' } | { kind: 'exec'; command: string } | { kind: 'subsystem'; name: 'sftp' };

export interface SessionPlan {
  /** What authorize() checks. */
  readonly action: Action;
  /** The command to run; null: the interactive shell; for sftp without a forced command the
   *  session's own sftp-server launcher. */
  readonly command: string | null;
  /** Extra environment, as sshd sets it (SSH_ORIGINAL_COMMAND under a forced command). */
  readonly env: Readonly<Record<string, string>>;
  /** True when the forced command replaced the client's request (for the log). */
  readonly forced: boolean;
}

export function planSession(identity: Identity, request: SshRequest): SessionPlan {
  const forced = identity.forcedCommand;
  if (forced !== null) {
    // sshd sets SSH_ORIGINAL_COMMAND to the exec'd command, or the subsystem's name; not for a shell.
    const original = request.kind === 'exec' ? request.command : request.kind === 'subsystem' ? request.name : null;
    const env: Record<string, string> = original === null ? {} : { SSH_ORIGINAL_COMMAND: original };
    return Object.freeze({ action: 'command', command: forced, env, forced: true });
  }
  switch (request.kind) {
    case 'shell':
      return Object.freeze({ action: 'shell', command: null, env: {}, forced: false });
    case 'exec':
      // scp in its old protocol (`scp -O`) arrives here too: it is a command like any other,
      // since the shell that runs `scp -t` would run anything else just as well.
      return Object.freeze({ action: 'command', command: request.command, env: {}, forced: false });
    case 'subsystem':
      return Object.freeze({ action: 'file-transfer', command: null, env: {}, forced: false });
  }
}

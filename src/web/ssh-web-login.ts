/**
 * `ssh web-login@BRIDGE [TARGET]`: an SSH login (key or certificate, any policy identity) asks
 * for a one-time link into the browser terminal. The login name `web-login` is reserved while
 * --web-listen is on; the link is printed on the session's stdout, works once, for 60 s, and
 * opens TARGET (a login name) or the picker. No process runs anywhere.
 */
import type { ServerChannel, Session as SshSession } from 'ssh2';
import type { Identity } from '../policy/index.ts';
import { parseTarget, type Engine } from '../target.ts';

export const WEB_LOGIN_NAME = 'web-login';

export type MintLink = (identity: Identity, target: string | null) => string;

export function serveWebLogin(ssh: SshSession, identity: Identity, mint: MintLink, defaultEngine: Engine | undefined): void {
  const answer = (channel: ServerChannel | undefined, command: string | null) => {
    if (!channel) return;
    const target = command?.trim() || null;
    if (target !== null) {
      try {
        parseTarget(target, { defaultEngine });
      } catch (err) {
        channel.stderr.write(`podbridge: ${(err as Error).message}\r\n`);
        channel.exit(1);
        channel.end();
        return;
      }
    }
    const link = mint(identity, target);
    channel.write(`Open this link in your browser within 60 seconds (it works once):\r\n\r\n  ${link}\r\n\r\n`);
    channel.exit(0);
    channel.end();
  };
  ssh.on('pty', (accept) => accept?.());
  ssh.on('env', (accept) => accept?.());
  ssh.on('window-change', (accept) => accept?.());
  ssh.on('shell', (accept) => answer(accept(), null));
  ssh.on('exec', (accept, _reject, info) => answer(accept(), info.command));
  ssh.on('subsystem', (_accept, reject) => reject?.());
}

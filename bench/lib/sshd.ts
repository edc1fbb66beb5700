/**
 * Private OpenSSH servers on loopback high ports, each with its own host key, config and
 * authorized_keys: one with a local shell (the SSH layer as OpenSSH pays it) and one with the
 * bastion recipe people run today, `ForceCommand kubectl exec ...` into the same pod.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Cluster } from './cluster.ts';
import { freePort, waitForPort } from '../../test/helpers/ports.ts';
import { run, startChild, stopChild, which } from './proc.ts';

export interface Availability {
  available: boolean;
  /** Why not, or how it was made available (e.g. "installed openssh-server with apt-get"). */
  note: string;
  path: string | null;
}

/** Finds sshd; installs openssh-server with apt-get when missing and running as root. */
export async function ensureSshd(log: (line: string) => void): Promise<Availability> {
  const found = which('sshd');
  if (found) return { available: true, note: 'found', path: found };
  if (process.getuid?.() !== 0) return { available: false, note: 'sshd is not installed and the bench is not running as root (apt-get install openssh-server)', path: null };
  if (!which('apt-get')) return { available: false, note: 'sshd is not installed and apt-get is not available', path: null };
  log('installing openssh-server with apt-get (sshd baseline)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'openssh-server'], { timeoutMs: 300_000, env });
  if (r.code !== 0) {
    await run('apt-get', ['update'], { timeoutMs: 300_000, env });
    r = await run('apt-get', ['install', '-y', '--no-install-recommends', 'openssh-server'], { timeoutMs: 300_000, env });
  }
  const after = which('sshd');
  if (r.code !== 0 || !after) return { available: false, note: `apt-get install openssh-server failed: ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`, path: null };
  return { available: true, note: 'installed openssh-server with apt-get', path: after };
}

export function kubectlAvailability(): Availability {
  const p = which('kubectl');
  return p ? { available: true, note: 'found', path: p } : { available: false, note: 'kubectl is not installed', path: null };
}

export interface Sshd {
  pid: number;
  port: number;
  user: string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  sshdPath: string;
  dir: string;
  publicKeyLine: string;
  /** The recipe's ForceCommand script, or none for a plain local shell. */
  forceCommand?: string;
  /** A bastion for ProxyJump (the tests of docs/ssh-config.md); off for the benchmarks. */
  allowTcpForwarding?: boolean;
}

export async function startSshd(o: SshdOptions): Promise<Sshd> {
  fs.mkdirSync(o.dir, { recursive: true });
  const hostKey = path.join(o.dir, 'ssh_host_ed25519_key');
  if (!fs.existsSync(hostKey)) {
    const r = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bench-sshd', '-f', hostKey], { timeoutMs: 20_000 });
    if (r.code !== 0) throw new Error(`ssh-keygen for the sshd host key failed: ${r.stderr}`);
  }
  const authorizedKeys = path.join(o.dir, 'authorized_keys');
  fs.writeFileSync(authorizedKeys, `${o.publicKeyLine}\n`, { mode: 0o600 });
  // Privilege separation directory (a fresh container may not have it).
  if (process.getuid?.() === 0) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  // A clean HOME for the sessions: the login user's own ~/.bashrc (pyenv, nvm...) would be
  // measured otherwise, and bash sources it even for `ssh host cmd`.
  const home = path.join(o.dir, 'home');
  fs.mkdirSync(home, { recursive: true });
  const config = path.join(o.dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      'PidFile none',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      `AuthorizedKeysFile ${authorizedKeys}`,
      'StrictModes no',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UseDNS no',
      'PrintMotd no',
      'PrintLastLog no',
      'X11Forwarding no',
      `AllowTcpForwarding ${o.allowTcpForwarding ? 'yes' : 'no'}`,
      'PermitUserEnvironment no',
      'AcceptEnv LANG LC_*',
      // As many sessions per connection as the bridge allows; connection bursts of the streaming
      // scenario must not be dropped by the default MaxStartups 10:30:100.
      'MaxSessions 10',
      'MaxStartups 1000',
      'LoginGraceTime 60',
      // Keepalives as the bridge sends them.
      'ClientAliveInterval 15',
      'ClientAliveCountMax 4',
      'LogLevel ERROR',
      `SetEnv HOME=${home}`,
      // The algorithms podbridge negotiates with the same client, so both pay for the same
      // crypto: a stock OpenSSH pair would pick the post-quantum sntrup761x25519-sha512, which
      // ssh2 does not implement (and which costs tens of ms more per connection here).
      'KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org',
      'Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr',
      'MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com',
      'HostKeyAlgorithms ssh-ed25519',
      ...(o.forceCommand ? [`ForceCommand ${o.forceCommand}`] : []),
      '',
    ].join('\n'),
  );
  const check = await run(o.sshdPath, ['-t', '-f', config], { timeoutMs: 20_000 });
  if (check.code !== 0) throw new Error(`sshd -t rejected the config: ${check.stderr.trim()}`);
  const child: ChildProcess = startChild(o.sshdPath, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  if (!(await waitForPort(port, 15_000))) {
    await stopChild(child, 'SIGTERM', 2000);
    throw new Error(`sshd did not listen on ${port}: ${stderr}`);
  }
  return {
    pid: child.pid as number,
    port,
    user: os.userInfo().username,
    stop: () => stopChild(child, 'SIGTERM', 5000),
  };
}

/**
 * The bastion recipe's ForceCommand: every SSH session becomes `kubectl exec` into one pod,
 * `-it` when sshd gave the session a terminal, the client's command through `sh -c`, else a
 * login shell. `exec` so the process tree is what people run: sshd, then kubectl.
 */
export function writeRecipeScript(dir: string, cluster: Cluster, kubectlPath: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const t = cluster.target;
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const base = [
    q(kubectlPath),
    '--kubeconfig', q(cluster.kubeconfig),
    '--cache-dir', q(cluster.kubectlCacheDir),
    '-n', q(t.namespace),
    'exec',
  ].join(' ');
  const container = t.container !== null ? ` -c ${q(t.container)}` : '';
  const file = path.join(dir, 'bastion-force-command.sh');
  fs.writeFileSync(
    file,
    [
      '#!/bin/sh',
      '# The bastion recipe: sshd ForceCommand -> kubectl exec into one pod.',
      'if [ -t 0 ]; then tty=-it; else tty=-i; fi',
      'if [ -n "$SSH_ORIGINAL_COMMAND" ]; then',
      `  exec ${base} $tty ${q(t.pod)}${container} -- sh -c "$SSH_ORIGINAL_COMMAND"`,
      'fi',
      `exec ${base} $tty ${q(t.pod)}${container} -- sh -c 'if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l'`,
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return file;
}

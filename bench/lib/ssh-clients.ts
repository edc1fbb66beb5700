/**
 * The two SSH clients the bench drives: the OpenSSH client (bulk transfers and `ssh target true`,
 * as people run them) and ssh2's Client in this process (interactive sessions and the thousands
 * of idle sessions of the scale scenario, with timing taken right where the bytes arrive).
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import ssh2 from 'ssh2';
import type { Client, ClientChannel } from 'ssh2';
import { sshArgs as baseSshArgs, type ClientKey } from '../../test/helpers/openssh-args.ts';
import { run, startChild } from './proc.ts';

export { makeClientKey, type ClientKey } from '../../test/helpers/openssh-args.ts';

/** Where an SSH client connects: port and login name (the bridge's is the target). */
export interface SshEndpoint {
  port: number;
  user: string;
}

/** Extra OpenSSH client options for every connection of the run (e.g. `-c aes128-gcm@openssh.com`). */
const clientOptions: string[] = [];

export function setClientOptions(opts: readonly string[]): void {
  clientOptions.splice(0, clientOptions.length, ...opts);
}

/** The tests' OpenSSH options plus the run's own, a longer connect timeout (a loaded machine)
 *  and no connection sharing (each measured connection pays its own handshake). */
export function sshArgs(ep: SshEndpoint, key: ClientKey, extra: readonly string[] = []): string[] {
  return [
    ...baseSshArgs(ep.port, key, [...extra, ...clientOptions, '-o', 'ConnectTimeout=20', '-o', 'ControlMaster=no', '-o', 'ControlPath=none']),
    `${ep.user}@127.0.0.1`,
  ];
}

export interface Timed {
  /** From the remote command's first stderr byte (it prints one before moving data) to exit. */
  seconds: number;
  /** From spawning ssh to its exit. */
  wallSeconds: number;
}

export const MARK_THEN = (cmd: string) => `printf S >&2; ${cmd}`;

export function awaitTimedExit(child: ChildProcess, what: string, timeoutMs: number, spawnedAt: number): Promise<Timed> {
  return new Promise((resolve, reject) => {
    let started = 0;
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what}: not done within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stderr?.on('data', (b: Buffer) => {
      if (started === 0) started = performance.now();
      stderr = (stderr + b.toString()).slice(-2000);
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      const end = performance.now();
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${what}: ssh exited with ${code ?? signal}; stderr: ${stderr.trim()}`));
      if (started === 0) return reject(new Error(`${what}: the start mark never arrived`));
      resolve({ seconds: (end - started) / 1000, wallSeconds: (end - spawnedAt) / 1000 });
    });
  });
}

/** `ssh target 'head -c N /dev/zero'` with the client's stdout on /dev/null. */
export async function opensshDownload(ep: SshEndpoint, key: ClientKey, bytes: number, timeoutMs: number): Promise<Timed> {
  const devnull = fs.openSync('/dev/null', 'w');
  try {
    const at = performance.now();
    const child = startChild('ssh', [...sshArgs(ep, key), MARK_THEN(`head -c ${bytes} /dev/zero`)], { stdio: ['ignore', devnull, 'pipe'] });
    return await awaitTimedExit(child, `download of ${bytes} bytes`, timeoutMs, at);
  } finally {
    fs.closeSync(devnull);
  }
}

/** `head -c N /dev/zero | ssh target 'cat > /dev/null'`; the bytes never pass through node. */
export async function opensshUpload(ep: SshEndpoint, key: ClientKey, bytes: number, timeoutMs: number): Promise<Timed> {
  const at = performance.now();
  const child = startChild('sh', ['-c', 'head -c "$0" /dev/zero | exec ssh "$@"', String(bytes), ...sshArgs(ep, key), MARK_THEN('cat > /dev/null')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return awaitTimedExit(child, `upload of ${bytes} bytes`, timeoutMs, at);
}

/** Checks that every byte arrives both ways (done once per path before timing it). */
export async function opensshVerify(ep: SshEndpoint, key: ClientKey, bytes: number): Promise<void> {
  const down = await run('ssh', [...sshArgs(ep, key), `head -c ${bytes} /dev/zero | wc -c`], { timeoutMs: 60_000 });
  const up = await run('sh', ['-c', 'head -c "$0" /dev/zero | exec ssh "$@"', String(bytes), ...sshArgs(ep, key), 'wc -c'], { timeoutMs: 60_000 });
  for (const [dir, r] of [['down', down], ['up', up]] as const) {
    if (r.code !== 0 || Number(r.stdout.trim()) !== bytes) {
      throw new Error(`integrity check (${dir}, ${bytes} bytes) failed: exit ${r.code}, got "${r.stdout.trim()}", stderr: ${r.stderr.trim().slice(0, 400)}`);
    }
  }
}

/** Wall time of `ssh target true`, in ms. */
export async function opensshTrue(ep: SshEndpoint, key: ClientKey): Promise<number> {
  const at = performance.now();
  const r = await run('ssh', [...sshArgs(ep, key), 'true'], { timeoutMs: 60_000 });
  const ms = performance.now() - at;
  if (r.code !== 0) throw new Error(`ssh true: exit ${r.code}: ${r.stderr.trim()}`);
  return ms;
}

/** `ssh target command` with stdout on /dev/null and stdin open, for the many-streams scenario. */
export function opensshCountedDownload(ep: SshEndpoint, key: ClientKey, command: string): { child: ChildProcess } {
  const devnull = fs.openSync('/dev/null', 'w');
  try {
    const child = startChild('ssh', [...sshArgs(ep, key), command], { stdio: ['pipe', devnull, 'pipe'] });
    return { child };
  } finally {
    fs.closeSync(devnull);
  }
}

// ---- ssh2 Client ----------------------------------------------------------------------------

/** Read once per key: the scale scenario connects thousands of times. */
const privateKeys = new Map<string, Buffer>();
function privateKeyOf(key: ClientKey): Buffer {
  let k = privateKeys.get(key.keyFile);
  if (!k) privateKeys.set(key.keyFile, (k = fs.readFileSync(key.keyFile)));
  return k;
}

export async function ssh2Connect(ep: SshEndpoint, key: ClientKey, timeoutMs = 30_000): Promise<Client> {
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error) => {
      client.removeListener('ready', ok);
      reject(err);
    };
    const ok = () => {
      client.removeListener('error', fail);
      client.on('error', () => undefined);
      resolve();
    };
    client.once('ready', ok);
    client.once('error', fail);
    client.connect({
      host: '127.0.0.1',
      port: ep.port,
      username: ep.user,
      privateKey: privateKeyOf(key),
      readyTimeout: timeoutMs,
      hostVerifier: () => true,
      keepaliveInterval: 0,
    });
  });
  // As OpenSSH does for interactive sessions: no Nagle on the client's socket.
  client.setNoDelay(true);
  return client;
}

/** A TTY session: a shell (command null) or a command, with a pty of the given size. */
export function ssh2Tty(client: Client, command: string | null, cols = 120, rows = 40): Promise<ClientChannel> {
  const pty = { term: 'xterm', cols, rows, width: 0, height: 0 };
  return new Promise((resolve, reject) => {
    const cb = (err: Error | undefined, ch: ClientChannel) => (err ? reject(err) : resolve(ch));
    if (command === null) client.shell(pty, cb);
    else client.exec(command, { pty }, cb);
  });
}

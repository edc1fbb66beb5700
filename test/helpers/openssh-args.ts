/**
 * A client key made by the real ssh-keygen and the OpenSSH client options every test and
 * benchmark connection uses (bench/lib/ssh-clients.ts builds on these; test/helpers/ssh-client.ts
 * re-exports them): no user config, no agent keys, no host-key prompts, no password prompts.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface ClientKey {
  dir: string;
  keyFile: string;
  publicLine: string;
}

/** A fresh key (ed25519 unless `type` says otherwise) in `dir`, or in a new temporary folder. */
export function makeClientKey(comment = 'tester@podbridge-test', type = 'ed25519', dir?: string): ClientKey {
  if (dir) fs.mkdirSync(dir, { recursive: true });
  const home = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'pb-client-'));
  const keyFile = path.join(home, `id_${type}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', comment, '-f', keyFile], { timeout: 20_000 });
  return { dir: home, keyFile, publicLine: fs.readFileSync(`${keyFile}.pub`, 'utf8').trim() };
}

/** Options for `ssh` to 127.0.0.1:`port` with `key`, before the destination. `extra` comes first:
 *  OpenSSH keeps the first value it sees for an option, so a caller's choice wins. */
export function sshArgs(port: number, key: ClientKey, extra: readonly string[] = []): string[] {
  return [
    ...extra,
    '-F', '/dev/null',
    '-p', String(port),
    '-i', key.keyFile,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'StrictHostKeyChecking=no',
    '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes',
    '-o', 'LogLevel=ERROR',
    '-o', 'ConnectTimeout=10',
  ];
}

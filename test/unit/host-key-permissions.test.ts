/**
 * Host key permissions under the layouts a Kubernetes Secret volume produces (root-owned files,
 * group = the pod's fsGroup, mode from defaultMode), with real files, owners and modes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadHostKeys } from '../../src/ssh/keys.ts';

const myGid = process.getgid!();
/** A group this process is not in. */
const otherGid = [4242, 4343, 4444].find((g) => g !== myGid && !process.getgroups!().includes(g))!;

function keyWith(mode: number, uid: number, gid: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-keyperm-'));
  const file = path.join(dir, 'ssh_host_ed25519_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  fs.chownSync(file, uid, gid);
  fs.chmodSync(file, mode);
  return file;
}

describe('host key permissions', () => {
  it('accepts owner-only keys and root-owned keys readable by a group this process is in (Secret + fsGroup)', () => {
    for (const [mode, uid] of [[0o600, process.getuid!()], [0o400, 0], [0o440, 0], [0o640, process.getuid!()]] as const) {
      const file = keyWith(mode, uid, myGid);
      assert.equal(loadHostKeys([file])[0]!.type, 'ssh-ed25519', mode.toString(8));
      fs.rmSync(path.dirname(file), { recursive: true });
    }
  });

  it('refuses keys others can read, group-writable keys, and keys readable by a group this process is not in', () => {
    const cases: Array<[number, number, RegExp]> = [
      [0o644, myGid, /is readable by other users \(mode 0644, owner 0, group \d+\); run: chmod 600 FILE, or in Kubernetes mount the Secret with defaultMode: 0440/],
      [0o444, myGid, /is readable by other users/],
      [0o460, myGid, /is writable or executable by its group \(mode 0460/],
      [0o440, otherGid, new RegExp(`is readable by group ${otherGid}, which this process \\(uid \\d+\\) is not in`)],
    ];
    for (const [mode, gid, message] of cases) {
      const file = keyWith(mode, 0, gid);
      assert.throws(() => loadHostKeys([file]), message, mode.toString(8));
      fs.rmSync(path.dirname(file), { recursive: true });
    }
  });
});

/**
 * StrictModes for the files that decide who gets in, on real files and real mounts: the
 * Kubernetes ConfigMap layout (a read-only mount, a 0777 volume directory, `..data` symlinks)
 * and the Secret layout (a sticky tmpfs) must load; anything others could write must not.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { mountFor, parseMountInfo, untrustedFileProblem } from '../../src/policy/file-trust.ts';
import { PolicySource } from '../../src/policy/index.ts';
import { createLogger } from '../../src/log.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-trust-'));
const mounts: string[] = [];
after(() => {
  for (const m of mounts.reverse()) execFileSync('umount', [m]);
  fs.rmSync(root, { recursive: true, force: true });
});

function file(rel: string, mode: number, text = 'version: 1\nrules: []\n'): string {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
  fs.writeFileSync(p, text);
  fs.chmodSync(p, mode);
  return p;
}

/** What kubelet's atomic writer leaves in a ConfigMap or Secret volume. */
function projectedVolume(dir: string, fileName: string, text: string): string {
  const stamp = '..2026_11_30_05_00_00.123456789';
  fs.mkdirSync(path.join(dir, stamp), { mode: 0o755 });
  fs.writeFileSync(path.join(dir, stamp, fileName), text, { mode: 0o644 });
  fs.symlinkSync(stamp, path.join(dir, '..data'));
  fs.symlinkSync(path.join('..data', fileName), path.join(dir, fileName));
  return path.join(dir, fileName);
}

function tmpfs(dir: string, options: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  mounts.push(dir);
}

describe('StrictModes (untrustedFileProblem)', () => {
  it('accepts a file of ours that only we can write, below the sticky /tmp', () => {
    assert.equal(untrustedFileProblem(file('ok/policy.yaml', 0o644)), null);
    assert.equal(untrustedFileProblem(file('ok/ro.yaml', 0o400)), null);
  });

  it('refuses a group- or world-writable file, naming the fix', () => {
    const p = file('loose/policy.yaml', 0o666);
    assert.equal(untrustedFileProblem(p), `it is writable by others (mode 0666); run: chmod go-w ${p}`);
    const g = file('loose/group.yaml', 0o664);
    assert.match(untrustedFileProblem(g) ?? '', /writable by its group \(mode 0664\)/);
  });

  it('refuses a file in a directory others can write (and that is not sticky)', () => {
    const p = file('open-dir/policy.yaml', 0o644);
    fs.chmodSync(path.dirname(p), 0o777);
    assert.equal(untrustedFileProblem(p), `directory ${path.dirname(p)} is writable by others (mode 0777); run: chmod go-w ${path.dirname(p)}`);
    fs.chmodSync(path.dirname(p), 0o1777);
    assert.equal(untrustedFileProblem(p), null, 'a sticky directory cannot be used to swap our file');
  });

  it('refuses a file owned by another user, and one reached through a symlink into an open directory', () => {
    const p = file('other/policy.yaml', 0o644);
    fs.chownSync(p, 12345, 12345);
    assert.match(untrustedFileProblem(p) ?? '', /^it is owned by uid 12345, not by root or the bridge's user/);
    const target = file('open-target/real.yaml', 0o644);
    fs.chmodSync(path.dirname(target), 0o777);
    const link = path.join(root, 'ok', 'link.yaml');
    fs.symlinkSync(target, link);
    assert.match(untrustedFileProblem(link) ?? '', /directory .*open-target is writable by others/);
  });

  it('accepts the ConfigMap layout on a read-only mount, and refuses the same layout writable', () => {
    const rw = path.join(root, 'configmap-rw');
    fs.mkdirSync(rw, { mode: 0o777 });
    fs.chmodSync(rw, 0o777);
    const rwFile = projectedVolume(rw, 'policy.yaml', 'version: 1\nrules: []\n');
    assert.match(untrustedFileProblem(rwFile) ?? '', /configmap-rw is writable by others \(mode 0777\)/);

    const cm = path.join(root, 'configmap');
    tmpfs(cm, 'size=1m,mode=0777');
    const policy = projectedVolume(cm, 'policy.yaml', 'version: 1\nrules: []\n');
    execFileSync('mount', ['-o', 'remount,ro', cm]);
    assert.equal(fs.statSync(cm).mode & 0o777, 0o777);
    assert.equal(untrustedFileProblem(policy), null);
  });

  it('accepts the Secret layout (a sticky tmpfs)', () => {
    const secret = path.join(root, 'secret');
    tmpfs(secret, 'size=1m,mode=1777');
    assert.equal(untrustedFileProblem(projectedVolume(secret, 'authorized_keys', '')), null);
  });

  it('reads mountinfo as proc(5) writes it', () => {
    const info = parseMountInfo(
      '26 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n' +
        '42 26 0:56 / /etc/pod\\040bridge ro,relatime - tmpfs tmpfs ro,size=1024k\n' +
        '43 42 0:57 / /etc/pod\\040bridge/inner rw,relatime - tmpfs tmpfs rw\n',
    );
    assert.deepEqual(mountFor(info, '/etc/pod bridge/policy.yaml'), { mountPoint: '/etc/pod bridge', readOnly: true });
    assert.deepEqual(mountFor(info, '/etc/pod bridge/inner/x'), { mountPoint: '/etc/pod bridge/inner', readOnly: false });
    assert.deepEqual(mountFor(info, '/etc/pod bridgex'), { mountPoint: '/', readOnly: false });
  });
});

describe('PolicySource applies StrictModes at load and at reload', () => {
  const log = createLogger('silent');
  it('refuses to start on a world-writable policy, naming file and fix', () => {
    const p = file('start/policy.yaml', 0o666);
    assert.throws(() => PolicySource.open({ file: p, kind: 'policy-file', log, watch: false }), (err: Error) => {
      assert.equal(err.message, `${p}: not trusted: it is writable by others (mode 0666); run: chmod go-w ${p} (sshd's StrictModes rule: whoever can write it can let themselves in)`);
      return true;
    });
    assert.doesNotThrow(() => PolicySource.open({ file: p, kind: 'policy-file', log, watch: false, strictModes: false }));
  });

  it('keeps the last good policy when the file becomes writable by others', () => {
    const p = file('reload/policy.yaml', 0o644);
    const src = PolicySource.open({ file: p, kind: 'policy-file', log, watch: false });
    const good = src.current().digest;
    fs.writeFileSync(p, 'version: 1\ngroups: [{ name: intruders }]\nrules: []\n');
    fs.chmodSync(p, 0o666);
    const r = src.reload('test');
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error.message, /not trusted: it is writable by others/);
    assert.equal(src.current().digest, good, 'the edit made by whoever could write the file is not in force');
  });
});

describe('the null device', () => {
  it('is trusted as an authorized_keys file (writable by all, yet it never holds a key)', () => {
    assert.equal((fs.statSync('/dev/null').mode & 0o002) !== 0, true, 'world-writable, as on every Linux');
    assert.equal(untrustedFileProblem('/dev/null'), null);
  });
});

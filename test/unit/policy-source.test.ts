/**
 * PolicySource: a bad file at start stops the bridge; on reload (SIGHUP or a file change) a bad
 * file is logged and the last good policy stays; editors that replace the file by rename and
 * ConfigMap-style symlink swaps are noticed. Every wait is bounded.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { PolicyError, PolicySource, resolveKey, type Policy } from '../../src/policy/index.ts';
import { waitUntil } from '../helpers/wait.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-policy-src-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

function keyLine(comment: string): { line: string; blob: Buffer } {
  const file = path.join(root, `key-${comment}`);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  const line = fs.readFileSync(`${file}.pub`, 'utf8').trim();
  return { line, blob: Buffer.from(line.split(' ')[1] ?? '', 'base64') };
}
const alice = keyLine('alice');
const bob = keyLine('bob');

interface LogLine {
  level: number;
  msg: string;
  err?: string;
  reason?: string;
}

function capture(): { log: ReturnType<typeof createLogger>; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as LogLine);
      done();
    },
  });
  return { log: createLogger('debug', sink), lines };
}

function policyText(identity: string, key: string, namespace = 'team-a'): string {
  return `version: 1
identities:
  - name: ${identity}
    keys: ["${key}"]
rules:
  - identities: [${identity}]
    namespaces: [${namespace}]
    pods: ["*"]
    shell: true
`;
}

let dirCount = 0;
function freshDir(): string {
  const dir = path.join(root, `d${dirCount++}`);
  fs.mkdirSync(dir);
  return dir;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const errors = (lines: LogLine[]) => lines.filter((l) => l.level >= 50);
const identities = (p: Policy) => [...p.identities.keys()];

describe('PolicySource', () => {
  it('a bad file at start-up throws the file:line:field message (the bridge stops)', () => {
    const dir = freshDir();
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, `${policyText('alice', alice.line)}    tyy: true\n`);
    const { log } = capture();
    assert.throws(
      () => PolicySource.open({ file, kind: 'policy-file', log, watch: false }),
      (err: unknown) => err instanceof PolicyError && err.message === `${file}:10: rules[0].tyy: unknown field (did you mean "tty"?); fields here: name, description, identities, groups, namespaces, pods, workloads, containers, tty, commands, shell, fileTransfer, portForwarding, observe, ports, docker`,
    );
    assert.throws(
      () => PolicySource.open({ file: path.join(dir, 'missing.yaml'), kind: 'policy-file', log, watch: false }),
      (err: unknown) => err instanceof PolicyError && err.message.startsWith(`${path.join(dir, 'missing.yaml')}: cannot read the policy file: ENOENT`),
    );
  });

  it('reload (SIGHUP) applies a good edit, and keeps the last good policy on a bad one', () => {
    const dir = freshDir();
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, policyText('alice', alice.line));
    const { log, lines } = capture();
    const changes: string[] = [];
    const source = PolicySource.open({ file, kind: 'policy-file', log, watch: false, onChange: (p, prev) => changes.push(`${identities(prev)}->${identities(p)}`) });
    try {
      assert.deepEqual(identities(source.current()), ['alice']);
      assert.deepEqual(source.reload('SIGHUP'), { ok: true, changed: false, policy: source.current() }, 'nothing changed: nothing swapped');

      fs.writeFileSync(file, policyText('bob', bob.line));
      const good = source.reload('SIGHUP');
      assert.equal(good.ok && good.changed, true);
      assert.deepEqual(identities(source.current()), ['bob']);
      assert.deepEqual(changes, ['alice->bob']);

      fs.writeFileSync(file, policyText('carol', alice.line, 'Team-A'));
      const bad = source.reload('SIGHUP');
      assert.equal(bad.ok, false);
      assert.equal(bad.ok ? '' : bad.error.message, `${file}:7: rules[0].namespaces[0]: invalid glob "Team-A": it has uppercase 'T': a namespace glob is lowercase letters, digits and '-', with '*' and '?' as wildcards`);
      assert.deepEqual(identities(source.current()), ['bob'], 'the last good policy stays');
      assert.ok(resolveKey(source.current(), bob.blob, '127.0.0.1', new Date()).ok, 'and keeps admitting its keys');
      const logged = errors(lines);
      assert.equal(logged.length, 1);
      assert.match(logged[0]!.msg, /^policy reload failed; keeping the previous policy/);
      assert.equal(logged[0]!.err, bad.ok ? '' : bad.error.message);
      assert.equal(logged[0]!.reason, 'SIGHUP');

      fs.rmSync(file);
      assert.equal(source.reload('SIGHUP').ok, false, 'a deleted policy file is a bad file too');
      assert.deepEqual(identities(source.current()), ['bob']);
      assert.deepEqual(changes, ['alice->bob']);
    } finally {
      source.close();
    }
  });

  it('reloads when the file is written in place', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, policyText('alice', alice.line));
    const { log } = capture();
    const source = PolicySource.open({ file, kind: 'policy-file', log, debounceMs: 50 });
    try {
      fs.writeFileSync(file, policyText('bob', bob.line));
      await waitUntil('the new policy', () => source.current().identities.has('bob'), 5_000);
    } finally {
      source.close();
    }
  });

  it('survives editors that replace the file by rename (new inode), again and again', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, policyText('alice', alice.line));
    const { log } = capture();
    const source = PolicySource.open({ file, kind: 'policy-file', log, debounceMs: 50 });
    try {
      for (const [i, name] of ['bob', 'carol', 'dave'].entries()) {
        const tmp = path.join(dir, `.policy.yaml.swp${i}`);
        fs.writeFileSync(tmp, policyText(name, name === 'carol' ? alice.line : bob.line));
        const inode = fs.statSync(file).ino;
        fs.renameSync(tmp, file);
        assert.notEqual(fs.statSync(file).ino, inode);
        await waitUntil(`policy with ${name}`, () => source.current().identities.has(name), 5_000);
      }
    } finally {
      source.close();
    }
  });

  it('a bad edit seen by the watcher keeps the old policy and is logged once, not on every event', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, policyText('alice', alice.line));
    const { log, lines } = capture();
    const source = PolicySource.open({ file, kind: 'policy-file', log, debounceMs: 50 });
    try {
      fs.writeFileSync(file, 'version: 1\nidentities: [\n');
      await waitUntil('the error log', () => errors(lines).length === 1, 5_000);
      assert.match(errors(lines)[0]!.err ?? '', new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+: YAML: `));
      fs.writeFileSync(path.join(dir, 'unrelated.txt'), 'x');
      fs.writeFileSync(path.join(dir, 'unrelated.txt'), 'y');
      await sleep(300);
      assert.equal(errors(lines).length, 1, 'an unrelated change in the directory does not repeat the error');
      assert.deepEqual(identities(source.current()), ['alice']);
      fs.writeFileSync(file, policyText('bob', bob.line));
      await waitUntil('the fixed policy', () => source.current().identities.has('bob'), 5_000);
    } finally {
      source.close();
    }
  });

  it('debounces a burst of writes into one reload of the final content', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, policyText('alice', alice.line));
    const { log } = capture();
    let loads = 0;
    const source = PolicySource.open({ file, kind: 'policy-file', log, debounceMs: 200, onChange: () => loads++ });
    try {
      for (let i = 0; i < 10; i++) {
        // Half-written states in between would be errors; the debounce never reads them.
        fs.writeFileSync(file, i === 9 ? policyText('bob', bob.line) : `version: 1\nidentities: [ ${i}`);
        await sleep(5);
      }
      await waitUntil('the final policy', () => source.current().identities.has('bob'), 5_000);
      await sleep(300);
      assert.equal(loads, 1);
    } finally {
      source.close();
    }
  });

  it('follows a Kubernetes ConfigMap volume, where a ..data symlink is swapped next to the file', async () => {
    const dir = freshDir();
    fs.mkdirSync(path.join(dir, '..v1'));
    fs.writeFileSync(path.join(dir, '..v1', 'policy.yaml'), policyText('alice', alice.line));
    fs.symlinkSync('..v1', path.join(dir, '..data'));
    fs.symlinkSync('..data/policy.yaml', path.join(dir, 'policy.yaml'));
    const file = path.join(dir, 'policy.yaml');
    const { log } = capture();
    const source = PolicySource.open({ file, kind: 'policy-file', log, debounceMs: 50 });
    try {
      fs.mkdirSync(path.join(dir, '..v2'));
      fs.writeFileSync(path.join(dir, '..v2', 'policy.yaml'), policyText('bob', bob.line));
      fs.symlinkSync('..v2', path.join(dir, '..data_tmp'));
      fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      fs.rmSync(path.join(dir, '..v1'), { recursive: true });
      await waitUntil('the swapped policy', () => source.current().identities.has('bob'), 5_000);
    } finally {
      source.close();
    }
  });

  it('authorized_keys mode: a missing file means no keys, and the file appearing lets keys in', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'authorized_keys');
    const { log, lines } = capture();
    const source = PolicySource.open({ file, kind: 'authorized-keys', log, debounceMs: 50 });
    try {
      assert.equal(source.current().keys.size, 0);
      assert.ok(lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith(`no usable keys in ${file}: every login will be refused`)));
      fs.writeFileSync(file, `${alice.line}\n`);
      await waitUntil('the key', () => resolveKey(source.current(), alice.blob, '127.0.0.1', new Date()).ok, 5_000);
      assert.equal(source.current().kind, 'authorized-keys');
    } finally {
      source.close();
    }
  });

  it('close() stops watching', async () => {
    const dir = freshDir();
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, policyText('alice', alice.line));
    const { log } = capture();
    const source = PolicySource.open({ file, kind: 'policy-file', log, debounceMs: 20 });
    source.close();
    fs.writeFileSync(file, policyText('bob', bob.line));
    await sleep(200);
    assert.deepEqual(identities(source.current()), ['alice']);
  });
});

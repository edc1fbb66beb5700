/**
 * Session recordings as an auditor reads them: an asciicast v3 file per terminal session,
 * checked against the format's spec (docs.asciinema.org/manual/asciicast/v3: a header object,
 * then [interval, code, data] events), through the real OpenSSH client in a terminal.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startTestBridge } from '../helpers/bridge.ts';
import { InteractiveSsh, runSsh } from '../helpers/ssh-client.ts';
import { waitUntil } from '../helpers/wait.ts';

type Event = [number, string, string];

function readCast(file: string): { header: Record<string, unknown>; comments: string[]; events: Event[] } {
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  assert.ok(!lines[0]!.startsWith('#'), 'the first line must be the header');
  const header = JSON.parse(lines[0]!) as Record<string, unknown>;
  const comments = lines.slice(1).filter((l) => l.startsWith('#'));
  const events = lines.slice(1).filter((l) => !l.startsWith('#')).map((l) => JSON.parse(l) as Event);
  for (const e of events) {
    assert.equal(e.length, 3);
    assert.ok(typeof e[0] === 'number' && e[0] >= 0, `interval ${e[0]}`);
    assert.match(e[1], /^[oirmx]$/);
    assert.equal(typeof e[2], 'string');
  }
  return { header, comments, events };
}

/** The recording has its exit event (not just `"x"` anywhere: the login name "x" is in its first comment). */
const hasExit = (file: string) => /^\[[\d.]+,"x","\d+"\]$/m.test(fs.readFileSync(file, 'utf8'));

const casts = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cast')).map((f) => path.join(dir, f)) : []);

describe('session recording (--record-dir)', () => {
  it('writes one asciicast v3 file per TTY session: header, output, resize, exact exit status; no input by default', async () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pb-rec-')), 'recordings');
    const br = await startTestBridge({ recordDir: dir });
    const term = new InteractiveSsh({ port: br.port, key: br.key, login: 'x', cols: 100, rows: 30, command: `echo ready; read line; printf 'got-%s\\n' "$line"; exit 7` });
    try {
      await term.waitFor(/ready/);
      await waitUntil('the recording file', () => casts(dir).length === 1);
      const file = casts(dir)[0]!;
      term.term.resize(120, 40);
      await waitUntil('the resize event', () => fs.readFileSync(file, 'utf8').includes('"r","120x40"'));
      term.write('secret-typed\r');
      assert.equal(await term.waitExit(), 7);
      await waitUntil('the exit event', () => hasExit(file));
      const { header, comments, events } = readCast(file);
      assert.equal(header.version, 3);
      assert.deepEqual(header.term, { cols: 100, rows: 30, type: 'xterm-256color' });
      assert.ok(Math.abs(Number(header.timestamp) - Date.now() / 1000) < 300);
      assert.match(String(header.command), /^echo ready; read line;/);
      assert.match(String(header.title), /^.+ on .+$/);
      assert.match(comments[0]!, /^# podbridge \{"identity":.*"remote":"127\.0\.0\.1:\d+"/);
      const output = events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');
      assert.match(output, /ready\r\n/);
      assert.match(output, /got-secret-typed\r\n/);
      assert.deepEqual(events.filter((e) => e[1] === 'i'), [], 'input is recorded only with --record-input');
      assert.deepEqual(events.at(-1), [events.at(-1)![0], 'x', '7']);
      assert.ok(events.some((e) => e[1] === 'r' && e[2] === '120x40'));
      assert.equal((fs.statSync(file).mode & 0o777).toString(8), '600');
      // A command without a terminal is audited, not recorded.
      const plain = await runSsh({ port: br.port, key: br.key, login: 'x', command: 'echo plain' });
      assert.equal(plain.stdout.toString(), 'plain\n');
      assert.equal(casts(dir).length, 1);
    } finally {
      term.kill();
      await br.close();
      fs.rmSync(path.dirname(dir), { recursive: true, force: true });
    }
  });

  it('records input with --record-input', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-rec-'));
    const br = await startTestBridge({ recordDir: dir, recordInput: true });
    const term = new InteractiveSsh({ port: br.port, key: br.key, login: 'x', command: 'echo ready; read line; exit 0' });
    try {
      await term.waitFor(/ready/);
      term.write('typed-words\r');
      assert.equal(await term.waitExit(), 0);
      await waitUntil('the finished recording', () => casts(dir).length === 1 && hasExit(casts(dir)[0]!));
      const input = readCast(casts(dir)[0]!).events.filter((e) => e[1] === 'i').map((e) => e[2]).join('');
      assert.equal(input, 'typed-words\r');
    } finally {
      term.kill();
      await br.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--record-required: refuses a TTY session whose recording cannot be opened, and ends one past its size cap with one line', async () => {
    const blocked = await startTestBridge({ recordDir: '/proc/version/recordings', recordRequired: true });
    try {
      const refused = new InteractiveSsh({ port: blocked.port, key: blocked.key, login: 'x', command: 'echo should-not-run' });
      assert.equal(await refused.waitExit(), 255);
      assert.match(refused.output, /podbridge: this bridge records terminal sessions and the recording could not be started \(ENOTDIR\); nothing was run: tell the bridge's operator/);
      assert.doesNotMatch(refused.output, /should-not-run/);
      // Without a terminal there is nothing to record: the command runs.
      const plain = await runSsh({ port: blocked.port, key: blocked.key, login: 'x', command: 'echo runs' });
      assert.equal(plain.stdout.toString(), 'runs\n');
    } finally {
      await blocked.close();
    }

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-rec-'));
    const small = await startTestBridge({ recordDir: dir, recordRequired: true, recordMaxSize: '2k' });
    try {
      // `ssh -tt` on pipes, not in a local terminal: a pty loses what ssh wrote just before it
      // exited (node-pty), and here that is the very line this asserts (it went missing in 5 of
      // 18 loaded runs in a pty, never on pipes: issue 16).
      const r = await runSsh({ port: small.port, key: small.key, login: 'x', command: 'echo ready; read line; head -c 20000 /dev/zero | tr "\\0" x; sleep 30', extraArgs: ['-tt'], stdin: Buffer.from('\r'), timeoutMs: 20_000 });
      assert.match(r.stderr, /podbridge: session ended: recording reached its size cap \(2048 bytes\), and this bridge requires one\r\n/);
      assert.equal(r.code, 255);
      await waitUntil('the marker', () => fs.readFileSync(casts(dir)[0]!, 'utf8').includes('"m"'));
      const cast = readCast(casts(dir)[0]!);
      assert.ok(fs.statSync(casts(dir)[0]!).size < 2048 + 200);
      assert.match(cast.events.at(-1)![2], /size cap/);
    } finally {
      await small.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

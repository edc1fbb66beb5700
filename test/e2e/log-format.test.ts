/**
 * The log as its two readers get it: a person running `podbridge serve` in a terminal reads one
 * line per event; a file, pipe or log shipper gets JSON lines.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import pty from 'node-pty';
import { compiled } from '../helpers/paths.ts';

const ANSI = /\x1b\[[0-9;]*m/g;

function serveArgs(dir: string): string[] {
  return [compiled('src/cli.ts'), 'serve', '--listen', '127.0.0.1:0', '--backend', 'local', '--host-key', path.join(dir, 'hk'), '--authorized-keys', '/dev/null'];
}

describe('log format', () => {
  it('prints readable single lines when stdout is a terminal', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-log-'));
    const term = pty.spawn(process.execPath, serveArgs(dir), { cols: 300, rows: 40, env: { ...process.env, KUBECONFIG: '/nonexistent' } });
    let out = '';
    term.onData((d) => (out += d));
    try {
      const deadline = Date.now() + 20_000;
      while (!/listening/.test(out)) {
        if (Date.now() > deadline) throw new Error(`no "listening" line: ${JSON.stringify(out)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 100));
      const lines = out.replace(ANSI, '').split(/\r?\n/).filter(Boolean);
      const listening = lines.find((l) => l.includes('listening'))!;
      assert.match(listening, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening \{"address":"127\.0\.0\.1:\d+"\}$/);
      assert.match(lines.find((l) => l.includes('local backend'))!, /^\[[\d:.]+\] WARN: local backend: /);
      for (const l of lines) assert.doesNotMatch(l, /^\{/, 'a JSON line on a terminal');
    } finally {
      term.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('writes JSON lines to a pipe', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-log-'));
    const child = spawn(process.execPath, serveArgs(dir), { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, KUBECONFIG: '/nonexistent' } });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    try {
      const deadline = Date.now() + 20_000;
      while (!/"msg":"listening"/.test(out)) {
        if (Date.now() > deadline) throw new Error(`no "listening" line: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      for (const line of out.split('\n').filter(Boolean)) {
        const entry = JSON.parse(line) as Record<string, unknown>;
        assert.equal(entry.app, 'podbridge');
        assert.match(String(entry.time), /^\d{4}-\d\d-\d\dT/);
      }
    } finally {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

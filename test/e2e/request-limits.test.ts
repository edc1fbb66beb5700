/**
 * Bounded requests (security review, item 1): env requests are capped per session in count and
 * bytes, long commands and terminal names are refused, and authenticated connections are capped
 * per identity and per source. The memory bound is measured in a bridge child process while a
 * client floods it with LC_* variables, as the review's attack did.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import ssh2 from 'ssh2';
import { REQUEST_LIMITS } from '../../src/session/requests.ts';
import { startBridgeProcess } from '../helpers/bridge-process.ts';
import { startTestBridge } from '../helpers/bridge.ts';
import { InteractiveSsh, makeClientKey, runSsh } from '../helpers/ssh-client.ts';

const MB = 1024 * 1024;

describe('per-session request caps', () => {
  it('a flood of env requests (2000 LC_* of 30 KB) leaves the bridge heap bounded and the session usable', async () => {
    const b = await startBridgeProcess({ logLevel: 'info' });
    const client = new ssh2.Client();
    try {
      const base = await b.stats({ gc: true });
      await new Promise<void>((resolve, reject) => {
        client.once('ready', () => resolve()).once('error', reject);
        client.connect({ host: '127.0.0.1', port: b.port, username: 'x', privateKey: fs.readFileSync(b.key.keyFile), readyTimeout: 60_000 });
      });
      const env: Record<string, string> = {};
      const value = 'x'.repeat(30_000);
      for (let i = 0; i < 2000; i++) env[`LC_${i}`] = value;
      // The command reports how many variables arrived, then holds the session open while we measure.
      const out = await new Promise<{ stream: ssh2.ClientChannel; first: string }>((resolve, reject) => {
        // Without the cap the bridge tries to start the command with 60 MB of environment.
        setTimeout(() => reject(new Error('the flooded session never ran its command')), 120_000).unref();
        client.exec('env | grep -c "^LC_"; cat', { env }, (err, stream) => {
          if (err) return reject(err);
          let text = '';
          stream.on('data', (d: Buffer) => {
            text += d.toString();
            if (text.includes('\n')) resolve({ stream, first: text.trim() });
          });
        });
      });
      const held = await b.stats({ gc: true });
      const grown = held.heapUsed - base.heapUsed;
      // 60 MB of requests; the cap keeps 64 KiB of them. A generous bound, not a measurement.
      assert.ok(grown < 16 * MB, `bridge heap grew by ${(grown / MB).toFixed(1)} MB while holding one flooded session`);
      assert.equal(Number(out.first), Math.floor(REQUEST_LIMITS.envBytes / (30_000 + 5)), 'as many variables as fit in the byte cap');
      assert.ok(b.logs.some((l) => l.msg === 'env request refused: over the per-session cap'));
      out.stream.end();
    } finally {
      client.end();
      await b.stop();
    }
  });

  it('the real client: at most 128 variables reach the process, the rest refused with a log line', async () => {
    const b = await startTestBridge({});
    try {
      const vars = Array.from({ length: 200 }, (_, i) => `LC_V${i}=v${i}`).join(' ');
      const r = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'env | grep -c "^LC_V"', extraArgs: ['-o', `SetEnv=${vars}`] });
      assert.equal(r.stdout.toString(), `${REQUEST_LIMITS.envVars}\n`, r.stderr);
      assert.equal(b.logs.filter((l) => l.msg === 'env request refused: over the per-session cap' && l.level === 40).length, 1, 'one warning per session, not one per request');
      // Bytes: two 30 KB values fit in 64 KiB, the third does not.
      const big = 'y'.repeat(30_000);
      const bytes = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'env | grep -c "^LC_B"', extraArgs: ['-o', `SetEnv=LC_B1=${big} LC_B2=${big} LC_B3=${big}`] });
      assert.equal(bytes.stdout.toString(), '2\n', bytes.stderr);
    } finally {
      await b.close();
    }
  });

  it('refuses a command over the size cap with a message, and keeps serving', async () => {
    const b = await startTestBridge({});
    try {
      const r = await runSsh({ port: b.port, key: b.key, login: 'x', command: `echo ${'z'.repeat(REQUEST_LIMITS.commandBytes)}` });
      assert.equal(r.code, 255);
      assert.equal(r.stdout.length, 0);
      assert.equal(r.stderr, `podbridge: command too long (${REQUEST_LIMITS.commandBytes + 5} bytes; at most ${REQUEST_LIMITS.commandBytes}): pass large input on stdin instead\n`);
      assert.ok(b.logs.some((l) => l.msg === 'exec refused: command too long'));
      const ok = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo still' });
      assert.equal(ok.stdout.toString(), 'still\n');
    } finally {
      await b.close();
    }
  });
});

describe('connection caps', () => {
  it('per identity: the connection over the cap is told why in one line, and the others keep working', async () => {
    const b = await startTestBridge({ maxConnectionsPerIdentity: 1 });
    // A command, not a login shell: the test must not depend on the machine's shell start-up files.
    const first = new InteractiveSsh({ port: b.port, key: b.key, login: 'x', command: 'echo FIRST-$((1+1)); exec sleep 600' });
    try {
      await first.waitFor(/FIRST-2/);
      const second = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo in' });
      assert.equal(second.code, 255);
      assert.equal(second.stdout.length, 0);
      assert.equal(second.stderr, 'podbridge: identity "tester@podbridge-test" has 1 connections open (the limit); close one (or share one with ControlMaster) and retry\n');
      assert.ok(b.logs.some((l) => l.msg === 'connection refused: max-connections-per-identity'));
      first.kill();
      // The slot is free again once the first connection closed.
      for (let i = 0; i < 100 && b.bridge.server.connections() > 0; i++) await new Promise((r) => setTimeout(r, 50));
      const third = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo in' });
      assert.equal(third.stdout.toString(), 'in\n', third.stderr);
    } finally {
      first.kill();
      await b.close();
    }
  });

  it('per source address: another identity from the same address is refused over the cap', async () => {
    const other = makeClientKey('other@laptop');
    const b = await startTestBridge({ maxConnectionsPerSource: 1 });
    fs.appendFileSync(`${b.dir}/authorized_keys`, `${other.publicLine}\n`);
    // A command, not a login shell: the test must not depend on the machine's shell start-up files.
    const first = new InteractiveSsh({ port: b.port, key: b.key, login: 'x', command: 'echo FIRST-$((1+1)); exec sleep 600' });
    try {
      await first.waitFor(/FIRST-2/);
      const second = await runSsh({ port: b.port, key: other, login: 'x', command: 'echo in' });
      assert.equal(second.code, 255);
      assert.equal(second.stderr, 'podbridge: 127.0.0.1 has 1 connections open (the limit); close one and retry\n');
    } finally {
      first.kill();
      await b.close();
    }
  });
});

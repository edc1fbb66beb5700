/**
 * The bridge under faults at its front door (issue 4): slow readers and fast writers stay within
 * a memory bound, garbage and slow clients are cut without leaks, 10,000 connections leave no
 * trace, SIGTERM drains gracefully, SIGHUP keeps sessions, idle and duration limits warn first.
 * The bridge runs as a child process so its own RSS, descriptors and event loop are what we read.
 * Every loop is bounded in count and time and talks to loopback only.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { describe, it } from 'node:test';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { startBridgeProcess, type BridgeProcess } from '../helpers/bridge-process.ts';
import { InteractiveSsh, runSsh } from '../helpers/ssh-client.ts';
import { waitUntil } from '../helpers/wait.ts';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An ssh2 client connection to the bridge, for fine control over reading and writing. */
function connect(b: BridgeProcess): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on('ready', () => resolve(c));
    c.on('error', reject);
    c.connect({ host: '127.0.0.1', port: b.port, username: 'x', privateKey: fs.readFileSync(b.key.keyFile) });
  });
}
function exec(c: ssh2.Client, command: string): Promise<ClientChannel> {
  return new Promise((resolve, reject) => c.exec(command, (err, ch) => (err ? reject(err) : resolve(ch))));
}

describe('faults at the front door', () => {
  it('a client that stops reading while the process writes without end: bounded memory, others unaffected', async (t) => {
    const b = await startBridgeProcess();
    try {
      const base = await b.stats();
      const stalled = await connect(b);
      const ch = await exec(stalled, 'cat /dev/zero');
      ch.pause(); // never read: the SSH window closes and the bridge must stop reading the process
      await sleep(3000);
      const during = await b.stats();
      const growth = during.rss - base.rss;
      // Bound: SSH window (2 MiB) + stream high-water marks + pipe buffers + V8 slack.
      assert.ok(growth < 48 * MiB, `bridge RSS grew ${(growth / MiB).toFixed(1)} MiB with a stalled reader`);
      // Another session still gets all its bytes while the stalled one stays stalled.
      const r = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'head -c 20971520 /dev/zero | sha256sum' });
      assert.equal(r.stdout.toString().split(' ')[0], crypto.createHash('sha256').update(Buffer.alloc(20 * MiB)).digest('hex'));
      const later = await b.stats();
      assert.ok(later.rss - base.rss < 48 * MiB, `still bounded: ${((later.rss - base.rss) / MiB).toFixed(1)} MiB`);
      t.diagnostic(`stalled reader: bridge RSS +${(growth / MiB).toFixed(1)} MiB after 3 s, +${((later.rss - base.rss) / MiB).toFixed(1)} MiB after another 20 MiB session`);
      stalled.end();
      await waitUntil('the stalled session is cleaned up', async () => (await b.stats()).sessions === 0, 10_000);
    } finally {
      await b.stop();
    }
  });

  it('a client that uploads faster than the process reads: bounded memory, every byte arrives', async (t) => {
    const b = await startBridgeProcess();
    try {
      const base = await b.stats();
      const c = await connect(b);
      const ch = await exec(c, 'sleep 3; wc -c');
      let out = '';
      ch.on('data', (d: Buffer) => (out += d.toString()));
      const total = 256 * MiB;
      const chunk = Buffer.alloc(256 * 1024, 7);
      let sent = 0;
      let peak = 0;
      const sampler = setInterval(() => void b.stats().then((s) => (peak = Math.max(peak, s.rss - base.rss))), 250);
      while (sent < total) {
        sent += chunk.length;
        if (!ch.write(chunk)) await new Promise((r) => ch.once('drain', r));
      }
      ch.end();
      const code = await new Promise((r) => ch.on('exit', r));
      clearInterval(sampler);
      c.end();
      assert.equal(code, 0);
      assert.equal(out.trim(), String(total));
      // Buffering the upload would cost most of its 256 MiB; what passing through costs is heap
      // churn before a collection (42 MiB measured quiet, up to 52 MiB with other tests beside it).
      assert.ok(peak < 64 * MiB, `bridge RSS grew ${(peak / MiB).toFixed(1)} MiB with a slow process`);
      t.diagnostic(`fast uploader: bridge RSS peak +${(peak / MiB).toFixed(1)} MiB while 256 MiB waited on a sleeping process`);
    } finally {
      await b.stop();
    }
  });

  it('garbage bytes, truncated handshakes and slow-loris clients are cut; nothing leaks; others are served', async () => {
    // 60 bad connections from one address: the per-source rate limit (tested in openssh10.test.ts) is off here.
    const b = await startBridgeProcess({ loginGraceTime: 2, maxConnectionRate: 0 });
    try {
      const base = await b.stats();
      const socks: net.Socket[] = [];
      const open = () => {
        const s = net.connect(b.port, '127.0.0.1');
        s.on('error', () => {});
        s.resume();
        socks.push(s);
        return s;
      };
      for (let i = 0; i < 20; i++) open().end(crypto.randomBytes(4096)); // garbage instead of a version line
      for (let i = 0; i < 20; i++) open().write('SSH-2.0-OpenSSH_9.2\r\n\x00\x00\x01\x2c\x0a\x14'); // ident, then half a KEXINIT
      const loris = Array.from({ length: 20 }, () => open());
      const drip = setInterval(() => loris.forEach((s) => s.writable && s.write('S')), 200); // one byte at a time
      // Someone else logs in meanwhile.
      const r = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo served' });
      assert.equal(r.stdout.toString(), 'served\n');
      await waitUntil('every bad connection is closed by the bridge', () => socks.every((s) => s.destroyed || s.readableEnded), 15_000);
      clearInterval(drip);
      for (const s of socks) s.destroy();
      await waitUntil('descriptors back to baseline', async () => (await b.stats()).fds <= base.fds + 2, 10_000);
      assert.ok(b.logs.some((l) => l.msg === 'login grace time exceeded; disconnecting'));
      assert.equal(b.child.exitCode, null, 'the bridge is still running');
    } finally {
      await b.stop();
    }
  });

  it('10,000 connections opened and closed: descriptors, memory and event-loop delay return to baseline', async (t) => {
    const b = await startBridgeProcess({ maxStartups: 1000, maxConnectionRate: 0 });
    try {
      // Warm up (JIT, first allocations), then take the baseline.
      const one = () =>
        new Promise<void>((resolve) => {
          const s = net.connect(b.port, '127.0.0.1');
          s.on('error', () => resolve());
          s.once('data', () => s.end('SSH-2.0-loop\r\n'));
          s.on('close', () => resolve());
          s.setTimeout(10_000, () => s.destroy());
        });
      const run = async (n: number, parallel: number) => {
        let next = 0;
        await Promise.all(Array.from({ length: parallel }, async () => {
          while (next < n) {
            next++;
            await one();
          }
        }));
      };
      await run(500, 20);
      await sleep(500);
      const base = await b.stats({ resetLoopDelay: true, gc: true });
      const started = Date.now();
      await run(10_000, 50);
      assert.ok(Date.now() - started < 240_000, 'the loop is bounded in time');
      await waitUntil('connections drained', async () => (await b.stats()).connections === 0, 20_000);
      await sleep(1000);
      await b.stats({ resetLoopDelay: true }); // measure a quiet second, as for the baseline
      await sleep(1000);
      const after = await b.stats({ gc: true });
      assert.ok(after.fds <= base.fds + 2, `fds ${base.fds} -> ${after.fds}`);
      // Retained memory (heap after GC) is the leak detector; RSS only shows V8 keeping pages.
      assert.ok(after.heapUsed - base.heapUsed < 4 * MiB, `heap retained grew ${((after.heapUsed - base.heapUsed) / MiB).toFixed(1)} MiB`);
      assert.ok(after.rss - base.rss < 96 * MiB, `rss grew ${((after.rss - base.rss) / MiB).toFixed(1)} MiB`);
      assert.ok(after.loopDelayP99 < Math.max(50, base.loopDelayP99 * 3), `event-loop delay p99 ${base.loopDelayP99.toFixed(1)} -> ${after.loopDelayP99.toFixed(1)} ms`);
      t.diagnostic(`10,000 connections in ${Date.now() - started} ms: fds ${base.fds} -> ${after.fds}, heap after GC ${(base.heapUsed / MiB).toFixed(1)} -> ${(after.heapUsed / MiB).toFixed(1)} MiB, rss ${(base.rss / MiB).toFixed(1)} -> ${(after.rss / MiB).toFixed(1)} MiB, loop p99 ${base.loopDelayP99.toFixed(1)} -> ${after.loopDelayP99.toFixed(1)} ms`);
      const r = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo ok' });
      assert.equal(r.stdout.toString(), 'ok\n');
    } finally {
      await b.stop();
    }
  });

  it('SIGTERM: stops accepting, warns each session, lets it finish within the grace period, ends the rest, exits 0', async () => {
    const b = await startBridgeProcess({ shutdownGrace: 3 });
    try {
      const quick = runSsh({ port: b.port, key: b.key, login: 'x', command: 'sleep 1; echo done-quick' });
      const slow = runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo started; sleep 100; echo never' });
      await waitUntil('both sessions run', async () => (await b.stats()).sessions === 2, 10_000);
      b.child.kill('SIGTERM');
      await sleep(200);
      const refused = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'echo new', timeoutMs: 10_000 });
      assert.equal(refused.code, 255, 'no new connections while draining');
      const q = await quick;
      assert.equal(q.stdout.toString(), 'done-quick\n');
      assert.equal(q.code, 0);
      // Told in the log: a command without a TTY gets no bridge text in its stderr (lifecycle.md).
      assert.equal(q.stderr, '');
      assert.ok(b.logs.some((l) => l.msg === 'notice' && l.notice === 'podbridge is shutting down; this session ends in 3 s'));
      const s = await slow;
      assert.equal(s.stdout.toString(), 'started\n');
      assert.match(s.stderr, /podbridge: session ended: podbridge shut down\n$/);
      assert.equal(s.code, 255);
      assert.equal(await b.exited, 0);
    } finally {
      await b.stop();
    }
  });

  it('SIGHUP reloads authorized_keys without dropping a running session', async () => {
    const b = await startBridgeProcess();
    const s = new InteractiveSsh({ port: b.port, key: b.key, login: 'x' });
    try {
      s.write('echo UP-$((20+3))\r');
      await s.waitFor(/UP-23/);
      const before = b.logs.filter((l) => l.msg === 'policy loaded').length;
      b.child.kill('SIGHUP');
      await sleep(500);
      const from = s.output.length;
      s.write('echo STILL-$((40+2))\r');
      await s.waitFor(/STILL-42/, 15_000, from);
      assert.equal(b.logs.filter((l) => l.msg === 'policy loaded').length, before, 'unchanged file: nothing to load');
      assert.ok(b.logs.some((l) => l.msg === 'policy unchanged' && l.reason === 'SIGHUP'));
      s.write('exit\r');
      assert.equal(await s.waitExit(), 0);
    } finally {
      s.kill();
      await b.stop();
    }
  });

  it('idle timeout: a warning first, then the session ends with a line saying why', async () => {
    // 6 s: a login shell on a loaded 2-core machine may take seconds to print its first byte, and
    // the idle clock runs from the session's start.
    const b = await startBridgeProcess({ idleTimeout: 6, sessionWarning: 3 });
    const s = new InteractiveSsh({ port: b.port, key: b.key, login: 'x' });
    // Until the shell has answered, keep the session busy (a space and its erasure): a login shell
    // may take longer than the idle limit to start on a loaded machine, and that is not what this
    // test is about.
    const busy = setInterval(() => s.write(' \x7f'), 1000);
    try {
      s.write('echo IN-$((1+1))\r');
      await s.waitFor(/IN-2/, 60_000).finally(() => clearInterval(busy));
      await s.waitFor(/podbridge: idle session; it ends in \d+ s unless there is activity/, 10_000);
      await s.waitFor(/podbridge: session ended: idle for 6 s/, 10_000);
      assert.equal(await s.waitExit(), 255);
    } finally {
      s.kill();
      await b.stop();
    }
  });

  it('maximum session duration: a warning first, then the end, and the process is gone', async () => {
    const b = await startBridgeProcess({ maxSessionTime: 3, sessionWarning: 1.5 });
    try {
      const marker = `${1000 + crypto.randomInt(1000)}.${crypto.randomInt(1_000_000)}`; // a sleep no one else runs
      const r = await runSsh({ port: b.port, key: b.key, login: 'x', command: `sleep ${marker}; true` });
      // Without a TTY the warning is in the log; stderr holds only the one line that ends it.
      assert.ok(b.logs.some((l) => l.msg === 'notice' && l.notice === 'this session reaches its maximum duration (3 s) in 2 s'));
      assert.equal(r.stderr, 'podbridge: session ended: maximum session duration (3 s) reached\n');
      assert.equal(r.code, 255);
      const ps = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(marker);
        } catch {
          return false;
        }
      });
      assert.deepEqual(ps, [], 'nothing left running');
    } finally {
      await b.stop();
    }
  });
});

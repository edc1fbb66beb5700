/**
 * A terminal session whose program does not read its input (security review, item 7): the
 * bridge must neither spin a core retrying the full pty nor buffer the input without limit.
 * Measured on a bridge child process with the real OpenSSH client.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { it } from 'node:test';
import { startBridgeProcess } from '../helpers/bridge-process.ts';
import { sshArgs } from '../helpers/ssh-client.ts';

/** utime + stime of a process, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
}

it('a stalled pty (the program reads nothing) costs the bridge little CPU while input waits', async () => {
  const b = await startBridgeProcess({ logLevel: 'info' });
  const ssh = spawn('ssh', [...sshArgs(b.port, b.key, ['-tt']), 'x@127.0.0.1', 'stty raw -echo; echo STALLED; exec sleep 600'], { stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    let out = '';
    ssh.stdout.on('data', (d: Buffer) => (out += d.toString()));
    ssh.stdin.on('error', () => {});
    for (let i = 0; i < 1200 && !out.includes('STALLED'); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(out.includes('STALLED'), `the session started: ${out}`);
    // Far more than the kernel's pty buffer holds: the rest must wait, paused, in the SSH window.
    ssh.stdin.write(Buffer.alloc(4 * 1024 * 1024, 'a'));
    // Let the input reach the bridge and fill the pty before measuring.
    for (let i = 0; i < 100; i++) await new Promise((r) => setTimeout(r, 20));
    const pid = b.child.pid!;
    const cpu0 = cpuSeconds(pid);
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, 3000));
    const used = cpuSeconds(pid) - cpu0;
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    // node-pty's own writer spun here: a whole core on an idle machine, 15-76% of one on this
    // loaded 2-core CI machine; ours measured 2%. A bound with room to spare, not a timing.
    assert.ok(used / wall < 0.1, `bridge used ${(100 * used / wall).toFixed(0)}% of a core while the pty was stalled`);
    const stats = await b.stats({ gc: true });
    assert.ok(stats.rss < 300 * 1024 * 1024, `bridge RSS ${Math.round(stats.rss / 1e6)} MB`);
  } finally {
    ssh.kill('SIGKILL');
    await b.stop();
  }
});

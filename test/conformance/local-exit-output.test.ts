/**
 * The last KiB a program writes to its terminal just before it exits, on the local backend
 * (node-pty). node-pty's reader (libuv 1.46 in Node 20) took the pty's hangup for the end after one
 * short read, and dropped what a paused reader had not taken 200 ms after the exit; see
 * patches/node-pty+1.1.0+001+no-output-lost-at-exit.patch. Every byte must arrive, however fast
 * or slowly the client reads, and then the status. Without a terminal (pipes) for comparison.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConformanceTarget } from './suite.ts';
import { seqText, sha256, sshSlowReader } from './streams.ts';
import { startTestBridge } from '../helpers/bridge.ts';

async function start(): Promise<ConformanceTarget> {
  const b = await startTestBridge({ backend: 'local' });
  return { port: b.port, key: b.key, login: 'default.anything', logs: b.logs, shutdown: b.shutdown, close: b.close };
}

const LINES = 300_000;
const pause = (ms: number) => () => new Promise<void>((res) => setTimeout(res, ms));

describe('local backend: output written just before the program exits', () => {
  for (const [what, holdMs] of [
    ['a reader that keeps up', 0],
    ['a reader that holds the bridge paused while the program exits', 1500],
  ] as const) {
    it(`TTY, ${what}: every byte, then the status`, async () => {
      const t = await start();
      try {
        // A few rounds: the loss was a race the program's exit usually, not always, won.
        for (let round = 0; round < 3; round++) {
          const r = await sshSlowReader(t, `stty -echo; seq 1 ${LINES}; exit 4`, { tty: true, hold: pause(holdMs) });
          const expected = seqText(1, LINES, '\r\n'); // the terminal's onlcr
          assert.equal(r.stdout.length, expected.length, `round ${round}: stdout length (${expected.length - r.stdout.length} bytes missing)`);
          assert.equal(sha256(r.stdout), sha256(expected), `round ${round}: stdout bytes`);
          assert.equal(r.code, 4);
        }
      } finally {
        await t.close();
      }
    });
  }

  it('no TTY, a reader that holds the bridge paused while the program exits: every byte, then the status', async () => {
    const t = await start();
    try {
      const r = await sshSlowReader(t, `seq 1 ${LINES}; exit 4`, { tty: false, hold: pause(1500) });
      const expected = seqText(1, LINES);
      assert.equal(r.stdout.length, expected.length, 'stdout length');
      assert.equal(sha256(r.stdout), sha256(expected), 'stdout bytes');
      assert.equal(r.code, 4);
    } finally {
      await t.close();
    }
  });
});

/**
 * The browser door's share of test/conformance/local-exit-output.test.ts: a page (the terminal's
 * WebSocket, without a browser) that holds the bridge paused while the program exits gets every
 * byte the program printed, then its exit status (patches/node-pty+1.1.0+001).
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { makeClientKey } from '../helpers/ssh-client.ts';
import { startTerminalServer, TermClient, webIdentity, type TerminalServer } from '../helpers/web-terminal.ts';

const LINES = 300_000;
const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

describe('browser terminal (local backend): output written just before the program exits', () => {
  let b: TestBridge;
  let web: TerminalServer;
  let dir: string;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-web-exit-'));
    const policy = path.join(dir, 'policy.yaml');
    const key = makeClientKey('alice');
    fs.writeFileSync(policy, `version: 1\nidentities:\n  - name: alice\n    keys: [${key.publicLine}]\nrules:\n  - identities: [alice]\n    namespaces: [default]\n    pods: ['*']\n    shell: true\n    commands: true\n    tty: true\n`);
    b = await startTestBridge({ backend: 'local', policy, webKeepalive: 0 });
    web = await startTerminalServer(b.bridge.terminals, { alice: webIdentity('alice') });
  });
  after(async () => {
    await web?.close();
    await b?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a page that holds the bridge paused while the program exits: every byte, then the status', async () => {
    const parts: string[] = [];
    for (let i = 1; i <= LINES; i++) parts.push(`${i}\r\n`); // the terminal's onlcr
    const expected = parts.join('');
    for (let round = 0; round < 3; round++) {
      const c = new TermClient(web.url({ as: 'alice', target: 'default.anything', cols: 80, rows: 24, command: `stty -echo; seq 1 ${LINES}; exit 4` }));
      try {
        await c.opened();
        // A slow page: nothing read for a while, so the bridge pauses the program and it exits
        // with its last output still in the terminal.
        c.ws.pause();
        await new Promise((r) => setTimeout(r, 1500));
        c.ws.resume();
        assert.deepEqual(await c.untilMessage('exit', 60_000), { type: 'exit', status: 4 });
        const text = c.text();
        assert.equal(text.length, expected.length, `round ${round}: ${expected.length - text.length} bytes missing`);
        assert.equal(sha256(text), sha256(expected), `round ${round}: the bytes`);
      } finally {
        c.ws.terminate();
      }
    }
  });
});

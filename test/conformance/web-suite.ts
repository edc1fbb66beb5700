/**
 * The browser door's part of the conformance suite: the same core behaviours as over SSH (output,
 * exit status, stdin, terminal size, resize, error lines), through a terminal WebSocket (`ws`
 * client) handed to the bridge's TerminalHub, on each backend.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Identity } from '../../src/identity.ts';
import type { TerminalHub } from '../../src/web/terminal/hub.ts';
import { CLOSE } from '../../src/web/terminal/protocol.ts';
import { startTerminalServer, TermClient, type TerminalServer } from '../helpers/web-terminal.ts';

export interface WebConformanceTarget {
  hub: TerminalHub;
  identity: Identity;
  /** A target (login-name grammar) that reaches a healthy container. */
  login: string;
  /** An identity the policy lets observe `identity`'s terminals there (and `identity` may not observe). */
  observer?: Identity;
  close(): Promise<void>;
}

export interface WebConformanceHarness {
  name: string;
  start(): Promise<WebConformanceTarget>;
  /** A target that cannot be entered, and the one line the user must read. */
  errorCase?: { login: string; message: RegExp };
  /** Its targets name an `observer` (the local backend's observe is in test/e2e/web-terminal.test.ts). */
  observe?: boolean;
}

export function webConformance(h: WebConformanceHarness): void {
  describe(`conformance (browser terminal): ${h.name}`, () => {
    let t: WebConformanceTarget;
    let server: TerminalServer;
    const clients: TermClient[] = [];
    const open = (query: Record<string, string | number>) => {
      const c = new TermClient(server.url({ as: 'user', target: t.login, cols: 80, rows: 24, term: 'xterm-256color', ...query }));
      clients.push(c);
      return c;
    };

    before(async () => {
      t = await h.start();
      server = await startTerminalServer(t.hub, { user: t.identity, ...(t.observer ? { observer: t.observer } : {}) });
    });
    after(async () => {
      for (const c of clients) c.ws.terminate();
      await server?.close();
      await t?.close();
    });

    it('runs a command: its output, then exit status 0 and a normal close', async () => {
      const c = open({ command: 'echo "hello web"' });
      assert.deepEqual(await c.untilMessage('exit'), { type: 'exit', status: 0 });
      assert.match(c.text(), /hello web\r\n/);
      assert.equal(await c.closed, CLOSE.normal);
    });

    it('returns the remote exit code exactly', async () => {
      for (const code of [1, 3, 127, 255]) {
        const c = open({ command: `exit ${code}` });
        assert.deepEqual(await c.untilMessage('exit'), { type: 'exit', status: code });
      }
    });

    it('has the browser size and TERM before the first byte of output', async () => {
      const c = open({ command: 'echo "size=$(stty size) term=$TERM"', cols: 123, rows: 37 });
      await c.untilMessage('exit');
      assert.match(c.text(), /size=37 123 term=xterm-256color/);
    });

    it('carries keystrokes to the process (stdin through the terminal)', async () => {
      const c = open({ command: 'read line; echo "got:$line"' });
      await c.untilMessage('session');
      c.type('typed-in\r');
      await c.untilOutput(/got:typed-in/);
      assert.deepEqual(await c.untilMessage('exit'), { type: 'exit', status: 0 });
    });

    it('applies resizes: stty size follows', async () => {
      const c = open({});
      await c.untilMessage('session');
      c.send({ type: 'resize', cols: 97, rows: 31 });
      c.type('echo "now:$(stty size)"\r');
      await c.untilOutput(/now:31 97/);
      c.type('exit 5\r');
      assert.deepEqual(await c.untilMessage('exit'), { type: 'exit', status: 5 });
    });

    if (h.observe) it('observe: a permitted identity gets the screen, then live output, read-only; others are refused', async () => {
      assert.ok(t.observer, 'the harness names an observer');
      const owner = open({});
      const { id } = await owner.untilMessage('session');
      owner.type('echo "before:$((6*7))"\r');
      await owner.untilOutput(/before:42/);
      const watcher = new TermClient(server.url({ as: 'observer', observe: String(id) }));
      clients.push(watcher);
      assert.equal((await watcher.untilMessage('session')).observer, true);
      assert.match(String((await watcher.untilMessage('screen')).data), /before:42/);
      await owner.until(() => owner.messages.some((m) => m.type === 'observers' && m.count === 1), 'an observer count of 1');
      watcher.type('echo OBSERVER-TYPED\r');
      owner.type('echo "after:$((5*5))"\r');
      await watcher.untilOutput(/after:25/);
      assert.doesNotMatch(owner.text(), /OBSERVER-TYPED/);
      const refused = new TermClient(server.url({ as: 'user', observe: String(id) }));
      clients.push(refused);
      assert.equal(await refused.closed, CLOSE.forbidden);
      owner.type('exit 4\r');
      assert.deepEqual(await owner.untilMessage('exit'), { type: 'exit', status: 4 });
      assert.deepEqual(await watcher.untilMessage('exit'), { type: 'exit', status: 4 });
    });

    if (h.errorCase) {
      const { login, message } = h.errorCase;
      it(`an unusable target: the same one line an SSH user reads, then the exit`, async () => {
        const c = open({ target: login, command: 'echo should-not-run' });
        const error = await c.untilMessage('error');
        assert.match(String(error.message), message);
        assert.match(String((await c.untilMessage('exit')).error), message);
        assert.doesNotMatch(c.text(), /should-not-run/);
        assert.equal(await c.closed, CLOSE.normal);
      });
    }
  });
}

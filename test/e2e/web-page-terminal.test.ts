// test-budget: file 300 s, test 120 s
/**
 * The browser terminal as a person uses it, in headless Chromium on the local backend: open a
 * target from a one-time link, type and read the screen, resize the window and read `stty size`,
 * refresh and find the same shell, lose the WebSocket and come back, end the session or close the
 * tab and find the process gone (after the grace period), exit status with a button, a
 * cross-origin page refused even with the cookie, and a second identity watching read-only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dropSocket, launchBrowser, screen, storedSession, terminalSize, tryWebSocket, waitForScreen, waitForStatus, type Page, type TestBrowser } from '../helpers/browser.ts';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { makeClientKey, runSsh, type ClientKey } from '../helpers/ssh-client.ts';
import { REPO } from '../helpers/paths.ts';
import { alive } from '../helpers/processes.ts';

const SHOTS = process.env.PODBRIDGE_UPDATE_SCREENSHOTS === '1';
const shot = (name: string) => path.join(REPO, 'docs', 'images', `web-${name}.png`);
const GRACE_S = 3;

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('browser terminal (local backend)', () => {
  let b: TestBridge;
  let alice: TestBrowser;
  let bob: TestBrowser;
  let bobKey: ClientKey;
  let web: string;

  /** A one-time link minted by a real `ssh web-login@bridge TARGET`. */
  const link = async (key: ClientKey, target: string | null) => {
    const out = await runSsh({ port: b.port, key, login: 'web-login', ...(target === null ? {} : { command: target }) });
    const url = /(http:\/\/\S+\/login#token=\S+)/.exec(out.stdout.toString())?.[1];
    assert.ok(url, `${out.code} ${out.stdout.toString()} ${out.stderr}`);
    return url;
  };
  const type = (page: Page, text: string) => page.keyboard.type(text);
  /** The shell's PID, read through the terminal. */
  const shellPid = async (page: Page, tag: string) => {
    await type(page, `echo pid-${tag}:$$\n`);
    return Number(/pid-\w+:(\d+)/.exec(await waitForScreen(page, new RegExp(`pid-${tag}:\\d+`)))?.[1]);
  };
  const openTerminal = async (browser: TestBrowser, key: ClientKey, target = 'local') => {
    const page = await browser.page();
    await page.goto(await link(key, target));
    await waitForStatus(page, /^connected$/);
    return page;
  };

  before(async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'pb-webterm-'));
    const aliceKey = makeClientKey('alice@laptop');
    bobKey = makeClientKey('bob@laptop');
    const policy = path.join(dir, 'policy.yaml');
    fs.writeFileSync(
      policy,
      `version: 1
identities:
  - name: alice
    keys: ["${aliceKey.publicLine}"]
  - name: bob
    keys: ["${bobKey.publicLine}"]
rules:
  - identities: [alice]
    namespaces: ["*"]
    pods: ["*"]
    shell: true
    tty: true
    commands: true
  - identities: [bob]
    namespaces: ["*"]
    pods: ["*"]
    observe: true
`,
      { mode: 0o600 },
    );
    b = await startTestBridge({ webListen: '127.0.0.1:0', policy, key: aliceKey, webResumeGrace: GRACE_S });
    web = `http://127.0.0.1:${b.bridge.web!.address.port}`;
    alice = await launchBrowser({ width: 1000, height: 600 });
    bob = await launchBrowser({ width: 1000, height: 600 });
  });
  after(async () => {
    await alice?.close();
    await bob?.close();
    await b?.close();
  });

  it('opens the target from the link with the window\'s size, runs what is typed, and follows a resize', async () => {
    const page = await openTerminal(alice, b.key);
    assert.equal(await page.title(), 'local — podbridge');
    assert.equal(new URL(page.url()).pathname, '/t/local');
    const size = await terminalSize(page);
    await type(page, 'stty size; echo sum:$((6*7))\n');
    await waitForScreen(page, new RegExp(`^${size.rows} ${size.cols}$[\\s\\S]*sum:42`, 'm'));
    if (SHOTS) await page.screenshot({ path: shot('terminal') });
    await page.setViewportSize({ width: 700, height: 420 });
    await until(async () => (await terminalSize(page)).cols !== size.cols, 'the terminal to fit the smaller window');
    const resized = await terminalSize(page);
    assert.ok(resized.cols < size.cols && resized.rows < size.rows, JSON.stringify({ size, resized }));
    // The coalesced resize reaches the pty: stty reads the new size.
    await until(async () => {
      await type(page, 'clear; stty size\n');
      await page.waitForTimeout(300);
      return (await screen(page)).includes(`${resized.rows} ${resized.cols}`);
    }, `stty size to read ${resized.rows} ${resized.cols}`);
    assert.deepEqual(alice.problems, [], 'no console errors or CSP violations');
    await page.close();
  });

  it('a refresh comes back to the same shell with its screen; a dropped WebSocket reconnects to it', async () => {
    const page = await openTerminal(alice, b.key);
    await type(page, 'export PB_MARK=kept-$((40+2)); echo before-refresh\n');
    await waitForScreen(page, /^before-refresh$/m);
    const pid = await shellPid(page, 'one');
    await page.reload();
    await waitForStatus(page, /^resumed$/);
    // The screen is restored before anything new is typed.
    await waitForScreen(page, /^before-refresh$/m);
    assert.equal(new URL(page.url()).pathname, '/t/local', 'the session id is not in the URL');
    await type(page, 'echo "mark:$PB_MARK pid:$$"\n');
    await waitForScreen(page, new RegExp(`^mark:kept-42 pid:${pid}$`, 'm'));
    await dropSocket(page);
    await waitForStatus(page, /^resumed$/);
    await type(page, 'echo "again:$PB_MARK"\n');
    await waitForScreen(page, /^again:kept-42$/m);
    // End session: the process goes at once, the page says so and offers a new one.
    await page.click('#end');
    await page.waitForSelector('#ended-message');
    assert.equal(await page.locator('#again').textContent(), 'New session');
    await until(() => !alive(pid), `shell ${pid} to be ended`);
    await page.close();
  });

  it('shows the exit status with a New session button that starts a fresh shell', async () => {
    const page = await openTerminal(alice, b.key);
    await type(page, 'exit 3\n');
    await page.waitForSelector('#ended-message');
    assert.equal(await page.locator('#ended-message').textContent(), 'exited with status 3');
    if (SHOTS) await page.screenshot({ path: shot('exit') });
    await page.click('#again');
    await waitForStatus(page, /^connected$/);
    await type(page, 'echo fresh:$PB_MARK:end\n');
    await waitForScreen(page, /^fresh::end$/m);
    await page.close();
  });

  it('closing the tab ends the shell after the grace period', async () => {
    const page = await openTerminal(alice, b.key);
    const pid = await shellPid(page, 'tab');
    await page.close();
    assert.ok(alive(pid), 'still running within the grace period');
    await until(() => !alive(pid), `shell ${pid} to be ended after ${GRACE_S} s`, 30_000);
  });

  it('a page of another origin cannot open a terminal, even with the login cookie', async () => {
    const page = await openTerminal(alice, b.key);
    const pid = await shellPid(page, 'xo');
    const other = http.createServer((_req, res) => res.end('<!doctype html><title>elsewhere</title>'));
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const evil = await alice.page();
      await evil.goto(`http://127.0.0.1:${(other.address() as AddressInfo).port}/`);
      const outcome = await tryWebSocket(evil, `${web.replace('http', 'ws')}/ws/terminal?target=local&cols=80&rows=24`);
      assert.equal(outcome, 'closed 1006');
      assert.ok(b.logs.some((l) => /Origin is not this page/.test(String(l.msg)) && l.origin === `http://127.0.0.1:${(other.address() as AddressInfo).port}`));
      await evil.close();
    } finally {
      other.close();
    }
    await page.click('#end');
    await until(() => !alive(pid), 'the shell to end');
    await page.close();
  });

  it('the owner shares a read-only link; another identity allowed to observe opens it, watches read-only, and the owner is told', async () => {
    const page = await openTerminal(alice, b.key);
    const id = await storedSession(page, 'local');
    assert.ok(id);
    // The owner's "share read-only link" copies the observe address (and shows it).
    await alice.browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: web });
    await page.click('#share');
    await page.waitForSelector('#notice:not([hidden])');
    const shared = /read-only link copied: (\S+)/.exec((await page.textContent('#notice')) ?? '')?.[1];
    assert.equal(shared, `${web}/observe#${id}`);
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), shared);
    const watcher = await bob.page();
    await watcher.goto(await link(bobKey, null));
    await watcher.waitForSelector('#places');
    await watcher.goto(shared!);
    await watcher.waitForSelector('#banner:not([hidden])', { timeout: 10_000 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await watcher.content()}\n${bob.problems.join('\n')}`);
    });
    assert.equal(new URL(watcher.url()).pathname + new URL(watcher.url()).hash, '/observe');
    assert.equal(await watcher.isHidden('#share'), true, 'a watcher has no share control');
    await waitForStatus(page, /^1 watching$/);
    await type(page, 'echo shown-to-both\n');
    await waitForScreen(watcher, /^shown-to-both$/m);
    await watcher.click('#terminal');
    await watcher.keyboard.type('echo from-watcher\n');
    await type(page, 'echo after-watcher\n');
    await waitForScreen(watcher, /^after-watcher$/m);
    assert.doesNotMatch(await screen(page), /from-watcher/);
    if (SHOTS) await watcher.screenshot({ path: shot('observe') });
    await page.click('#end');
    await page.close();
    await watcher.close();
  });
});

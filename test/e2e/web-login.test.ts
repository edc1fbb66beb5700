// test-budget: file 240 s, test 120 s
/**
 * Logging in to the browser terminal as a person does, in headless Chromium: `ssh web-login@bridge`
 * prints a link that opens the picker (and leaves no token in the address bar or the history); an
 * authenticating proxy's header logs in and the picker lists only the pods the policy and the
 * cluster let this identity enter; the same header from an address that is not the proxy is
 * refused in the page. The page must run without a single CSP violation.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchBrowser, waitForScreen, waitForStatus, type TestBrowser } from '../helpers/browser.ts';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { makeClientKey, runSsh } from '../helpers/ssh-client.ts';
import { REPO } from '../helpers/paths.ts';

const SHOTS = process.env.PODBRIDGE_UPDATE_SCREENSHOTS === '1';
const shot = (name: string) => path.join(REPO, 'docs', 'images', `web-${name}.png`);

describe('browser login with a one-time link (local backend)', () => {
  let b: TestBridge;
  let browser: TestBrowser;
  before(async () => {
    b = await startTestBridge({ webListen: '127.0.0.1:0' });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await b?.close();
  });

  it('ssh web-login@bridge prints a link that logs the browser in once, and the token leaves no trace in the URL or history', async () => {
    const web = `http://127.0.0.1:${b.bridge.web!.address.port}`;
    const out = await runSsh({ port: b.port, key: b.key, login: 'web-login' });
    assert.equal(out.code, 0, out.stderr);
    const link = /(http:\/\/\S+\/login#token=[A-Za-z0-9_-]{43})/.exec(out.stdout.toString())?.[1];
    assert.ok(link, out.stdout.toString());
    assert.ok(link.startsWith(web), link);
    const page = await browser.page();
    await page.goto(link);
    await page.waitForSelector('#places a.place');
    assert.equal(page.url(), `${web}/`);
    assert.deepEqual(await page.locator('#places a.place').allTextContents(), ['local']);
    const cookies = await browser.browser.cookies(web);
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0]!.httpOnly, true);
    assert.equal(cookies[0]!.sameSite, 'Strict');
    await page.goBack();
    assert.ok(!page.url().includes('token'), `history entry ${page.url()}`);
    // The link works once: a second tab that opens it is told so.
    const second = await browser.page();
    await browser.browser.clearCookies();
    await second.goto(link);
    await second.waitForSelector('#error');
    assert.match(await second.locator('#error').textContent() ?? '', /^this login link is not valid: it was used already/);
    assert.equal(second.url(), `${web}/login`);
    assert.deepEqual(browser.problems.filter((p) => !/403/.test(p)), [], 'no console errors or CSP violations');
  });
});

describe('browser login through an authenticating proxy (fake Kubernetes)', () => {
  let cluster: TestCluster;
  let b: TestBridge;
  let browser: TestBrowser;
  let web: string;
  before(async () => {
    cluster = await startTestCluster();
    const alice = makeClientKey('alice@laptop');
    const policy = path.join(cluster.dir, 'policy.yaml');
    fs.writeFileSync(
      policy,
      `version: 1
identities:
  - name: alice
    keys: ["${alice.publicLine}"]
    principals: [alice@example.com]
    kubernetes: { user: alice@example.com }
rules:
  - identities: [alice]
    namespaces: [team-a]
    pods: ["web-*", annotated]
    shell: true
    tty: true
`,
      { mode: 0o600 },
    );
    b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig, policy, key: alice, webListen: '127.0.0.1:0', webTrustedProxy: ['127.0.0.1'] });
    web = `http://127.0.0.1:${b.bridge.web!.address.port}`;
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await b?.close();
    await cluster?.stop();
  });

  it('lists only the running containers of the pods the policy allows, with a search box', async () => {
    const page = await browser.page();
    await page.setExtraHTTPHeaders({ 'X-Forwarded-User': 'alice@example.com', 'X-Forwarded-Groups': 'devs' });
    await page.goto(`${web}/`);
    await page.waitForSelector('#places a.place');
    assert.deepEqual((await page.locator('#places a.place').allTextContents()).sort(), ['team-a.annotated+init-helper', 'team-a.annotated+main', 'team-a.web-1+app', 'team-a.web-1+sidecar']);
    assert.equal(await page.locator('#title').textContent(), 'podbridge — alice');
    const listed = cluster.api.requests.filter((r) => r.path === '/api/v1/namespaces/team-a/pods');
    assert.ok(listed.length > 0 && listed.every((r) => r.user === 'alice@example.com'), 'pods listed as alice');
    await page.fill('#picker-search', 'web side');
    assert.deepEqual(await page.locator('#places a.place').allTextContents(), ['team-a.web-1+sidecar']);
    await page.fill('#picker-search', '');
    if (SHOTS) await page.screenshot({ path: shot('picker') });
    assert.deepEqual(browser.problems, [], 'no console errors or CSP violations');
  });

  it('picking a container opens a terminal in it, as alice towards the API server', async () => {
    const page = await browser.page();
    await page.setExtraHTTPHeaders({ 'X-Forwarded-User': 'alice' });
    await page.goto(`${web}/`);
    await page.click('#places a.place:text-is("team-a.web-1+sidecar")');
    await waitForStatus(page, /^connected$/);
    assert.equal(await page.title(), 'team-a.web-1+sidecar — podbridge');
    await page.keyboard.type('echo "in:$((20+1))"\n');
    await waitForScreen(page, /^in:21$/m);
    const exec = cluster.api.requests.find((r) => /\/pods\/web-1\/exec$/.test(r.path) && r.query.get('container') === 'sidecar');
    assert.ok(exec, 'an exec into web-1/sidecar');
    assert.equal(exec.user, 'alice@example.com', 'impersonated');
    await page.click('#end');
    await page.waitForSelector('#ended-message');
  });
});

describe('a forged proxy header', () => {
  let b: TestBridge;
  let browser: TestBrowser;
  before(async () => {
    b = await startTestBridge({ webListen: '127.0.0.1:0', webTrustedProxy: ['10.9.9.9'] });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await b?.close();
  });

  it('from an address that is not the trusted proxy is refused in the page and logged', async () => {
    const page = await browser.page();
    await page.setExtraHTTPHeaders({ 'X-Forwarded-User': 'tester@podbridge-test' });
    await page.goto(`http://127.0.0.1:${b.bridge.web!.address.port}/`);
    await page.waitForSelector('#error');
    assert.equal(await page.locator('#error').textContent(), 'a x-forwarded-user header came from 127.0.0.1, which is not a --web-trusted-proxy address; refused');
    assert.ok(b.logs.some((l) => l.level === 40 && l.remote === '127.0.0.1' && /not a --web-trusted-proxy address/.test(String(l.msg))));
  });
});

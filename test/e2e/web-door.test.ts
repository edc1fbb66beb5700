// test-budget: file 120 s, test 60 s
/**
 * The browser door at the HTTP level, as a browser and an attacker's page would meet it: the
 * start-up refusal of plain HTTP off loopback, the security headers, logins by proxy header (from
 * the trusted address only) and by one-time link (single use, its cookie's flags, logout), and the
 * Origin check on the terminal WebSocket. The page itself is driven in web-*.test.ts (Chromium).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { buildConfig } from '../../src/config.ts';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { testIdentity } from '../helpers/identity.ts';
import { makeServingMaterial } from '../fixtures/kube-apiserver/tls.ts';

const CSP = /^default-src 'none'; script-src 'self'; style-src 'self' 'nonce-([A-Za-z0-9+/=]+)'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'$/;

function policyFile(dir: string): string {
  const file = path.join(dir, 'policy.yaml');
  fs.writeFileSync(
    file,
    ['version: 1', 'identities:', '  - name: alice', '    principals: [alice@example.com]', 'rules:', '  - identities: [alice]', '    namespaces: ["*"]', '    pods: ["*"]', '    shell: true', '    tty: true', ''].join('\n'),
    { mode: 0o600 },
  );
  return file;
}

/** The first close code and any error message the server sent on a terminal socket. */
function wsOutcome(url: string, headers: Record<string, string>): Promise<{ status?: number; code?: number; messages: string[] }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    const messages: string[] = [];
    ws.on('message', (data, binary) => {
      if (!binary) messages.push(String(data));
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode, messages });
      res.resume();
    });
    ws.on('close', (code) => resolve({ code, messages }));
    ws.on('error', () => undefined);
  });
}

describe('web door: start-up', () => {
  it('refuses plain HTTP on a non-loopback address, naming the flag', () => {
    assert.throws(() => buildConfig({ webListen: '0.0.0.0:8443' }), /web-listen "0\.0\.0\.0:8443": plain HTTP is served only on a loopback address; give --web-tls-cert and --web-tls-key/);
    assert.throws(() => buildConfig({ webListen: '127.0.0.1:8443', webTlsCert: '/x.pem' }), /web-tls-cert "\/x\.pem": needs --web-tls-key too/);
    assert.equal(buildConfig({ webListen: '[::1]:8443' }).web.listen?.host, '::1');
  });
});

describe('web door over plain HTTP on loopback', () => {
  let b: TestBridge;
  let base: string;
  before(async () => {
    b = await startTestBridge({ webListen: '127.0.0.1:0', webTrustedProxy: ['10.9.9.9'] });
    base = `http://127.0.0.1:${b.bridge.web!.address.port}`;
  });
  after(() => b.close());

  it('serves the page with a strict CSP whose style nonce is fresh per response, and no HSTS', async () => {
    const one = await fetch(`${base}/t/team-a.web`);
    const two = await fetch(`${base}/`);
    assert.equal(one.status, 200);
    const csp = one.headers.get('content-security-policy') ?? '';
    const nonce = CSP.exec(csp)?.[1];
    assert.ok(nonce, csp);
    assert.match(await one.text(), new RegExp(`<meta name="style-nonce" content="${nonce.replace(/[+/=]/g, '\\$&')}">`));
    assert.notEqual(CSP.exec(two.headers.get('content-security-policy') ?? '')?.[1], nonce);
    assert.equal(one.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(one.headers.get('referrer-policy'), 'no-referrer');
    assert.equal(one.headers.get('x-frame-options'), 'DENY');
    assert.equal(one.headers.get('strict-transport-security'), null);
    const js = await fetch(`${base}/assets/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.equal((await fetch(`${base}/assets/../../package.json`)).status, 404);
  });

  it('answers 401 with the SSH-style hint when nobody is logged in', async () => {
    const res = await fetch(`${base}/api/me`);
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { error: string }).error, /^not logged in: run ssh web-login@BRIDGE/);
  });

  it('refuses a proxy user header from an address that is not a trusted proxy, and logs it', async () => {
    const res = await fetch(`${base}/api/me`, { headers: { 'X-Forwarded-User': 'alice' } });
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { error: string }).error, /x-forwarded-user header came from 127\.0\.0\.1, which is not a --web-trusted-proxy address/);
    assert.ok(b.logs.some((l) => l.level === 40 && /not a --web-trusted-proxy address/.test(String(l.msg))), 'a warning in the log');
  });

  it('exchanges a one-time link once for an HttpOnly SameSite=Strict cookie (no Secure on loopback HTTP), and logs out', async () => {
    // The identity an SSH login with the bridge's test key has (authorized_keys mode).
    const fingerprint = execFileSync('ssh-keygen', ['-lf', `${b.key.keyFile}.pub`]).toString().split(' ')[1]!;
    const who = { ...testIdentity('tester@podbridge-test'), keyFingerprint: fingerprint };
    const link = b.bridge.web!.mintLoginLink(who, 'team-a.web');
    assert.match(link, new RegExp(`^${base}/login#token=[A-Za-z0-9_-]{43}$`));
    const token = link.split('#token=')[1]!;
    const post = (origin: string, t = token) => fetch(`${base}/api/login`, { method: 'POST', headers: { Origin: origin, 'Content-Type': 'application/json' }, body: JSON.stringify({ token: t }) });
    assert.equal((await post('https://evil.example')).status, 403, 'a cross-site login is refused');
    const ok = await post(base);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json(), { identity: who.name, target: 'team-a.web' });
    const setCookie = ok.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^podbridge_login=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/);
    const again = await post(base);
    assert.equal(again.status, 403, 'the token works once');
    assert.match(((await again.json()) as { error: string }).error, /^this login link is not valid: it was used already, has expired/);
    const cookie = setCookie.split(';')[0]!;
    const me = await fetch(`${base}/api/me`, { headers: { Cookie: cookie } });
    assert.deepEqual(await me.json(), { identity: who.name, via: 'cookie', canLogout: true });
    const out = await fetch(`${base}/api/logout`, { method: 'POST', headers: { Cookie: cookie, Origin: base } });
    assert.match(out.headers.get('set-cookie') ?? '', /^podbridge_login=; Path=\/; Max-Age=0/);
    assert.equal((await fetch(`${base}/api/me`, { headers: { Cookie: cookie } })).status, 401);
  });

  it('refuses a terminal WebSocket from another origin before upgrading, and one without a login with 4001', async () => {
    const url = `ws://127.0.0.1:${b.bridge.web!.address.port}/ws/terminal?target=local&cols=80&rows=24`;
    const cross = await wsOutcome(url, { Origin: 'https://evil.example' });
    assert.equal(cross.status, 403);
    assert.ok(b.logs.some((l) => /WebSocket upgrade refused: its Origin is not this page/.test(String(l.msg)) && l.origin === 'https://evil.example'));
    const anonymous = await wsOutcome(url, { Origin: base });
    assert.equal(anonymous.code, 4001);
    assert.match(anonymous.messages[0] ?? '', /"type":"error","message":"not logged in: run ssh web-login@BRIDGE/);
  });
});

describe('web door behind a trusted proxy, over HTTPS', () => {
  let b: TestBridge;
  let port: number;
  let ca: string;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'pb-webtls-'));
    const tls = await makeServingMaterial(dir);
    fs.writeFileSync(path.join(dir, 'cert.pem'), tls.certPem);
    fs.writeFileSync(path.join(dir, 'key.pem'), tls.keyPem, { mode: 0o600 });
    ca = tls.caPem;
    b = await startTestBridge({ webListen: '127.0.0.1:0', webTlsCert: path.join(dir, 'cert.pem'), webTlsKey: path.join(dir, 'key.pem'), webTrustedProxy: ['127.0.0.0/8'], policy: policyFile(dir) });
    port = b.bridge.web!.address.port;
  });
  after(() => b.close());

  const get = (p: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: p, ca, headers }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        })
        .on('error', reject);
    });

  it('sends HSTS and maps the proxy user to a policy identity by name or certificate principal', async () => {
    const byName = await get('/api/me', { 'X-Forwarded-User': 'alice', 'X-Forwarded-Groups': 'devs' });
    assert.equal(byName.headers['strict-transport-security'], 'max-age=31536000');
    assert.deepEqual(JSON.parse(byName.body), { identity: 'alice', via: 'proxy', canLogout: false });
    assert.equal(JSON.parse((await get('/api/me', { 'X-Forwarded-User': 'alice@example.com' })).body).identity, 'alice');
    const stranger = await get('/api/me', { 'X-Forwarded-User': 'mallory' });
    assert.equal(stranger.status, 403);
    assert.match(JSON.parse(stranger.body).error, /^web user "mallory" is neither an identity nor a certificate principal in the policy /);
    assert.equal((await get('/api/me')).status, 401, 'the proxy must always name the user');
  });
});

/**
 * The browser door's credentials on a clock we control: a one-time link expires after 60 s and
 * works once, the stores stay bounded, a cookie login ends at its lifetime and at logout, and the
 * terminal request's query is checked before it reaches the hub.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrowserLogins, loginCookie, readCookie } from '../../src/web/auth/browser-logins.ts';
import { LINK_LIFETIME_MS, OneTimeLinks } from '../../src/web/auth/one-time-links.ts';
import { parseOpen } from '../../src/web/terminal-upgrade.ts';
import { testIdentity } from '../helpers/identity.ts';

describe('one-time login links', () => {
  it('work once, only within 60 s, and hold at most 1000 pending links', () => {
    let now = 1_000_000;
    const links = new OneTimeLinks(() => now);
    const token = links.mint(testIdentity('alice'), 'team-a.web');
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    const ok = links.redeem(token);
    assert.equal(ok.ok && ok.identity.name, 'alice');
    assert.equal(links.redeem(token).ok, false, 'second use');
    const late = links.redeem(links.mint(testIdentity('bob'), null) + '');
    assert.equal(late.ok, true);
    const expiring = links.mint(testIdentity('carol'), null);
    now += LINK_LIFETIME_MS;
    assert.equal(links.redeem(expiring).ok, false, 'expired at 60 s');
    assert.equal(links.redeem('not a token').ok, false);
    for (let i = 0; i < 1500; i++) links.mint(testIdentity(`u${i}`), null);
    assert.equal(links.size, 1000);
  });
});

describe('cookie logins', () => {
  it('end at their lifetime and at logout, and the cookie carries its flags', () => {
    let now = 0;
    const logins = new BrowserLogins(3_600_000, () => now);
    const a = logins.create(testIdentity('alice'));
    assert.equal(a.maxAgeSeconds, 3600);
    assert.equal(logins.find(a.value)?.name, 'alice');
    assert.equal(readCookie(`x=1; ${loginCookie(a.value, 3600, true).split(';')[0]}; y=2`), a.value);
    assert.equal(loginCookie(a.value, 3600, true), `podbridge_login=${a.value}; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict; Secure`);
    now += 3_600_000;
    assert.equal(logins.find(a.value), null, 'expired');
    const b = logins.create(testIdentity('bob'));
    logins.end(b.value);
    assert.equal(logins.find(b.value), null, 'logged out');
  });
});

describe('terminal request query', () => {
  it('accepts new, resume and observe requests and names what is wrong otherwise', () => {
    assert.deepEqual(parseOpen(new URLSearchParams('target=team-a.web%2Bnginx&cols=120&rows=40&term=xterm-256color')), { kind: 'new', target: 'team-a.web+nginx', cols: 120, rows: 40, term: 'xterm-256color', command: null });
    assert.deepEqual(parseOpen(new URLSearchParams('resume=AbC_-1')), { kind: 'resume', session: 'AbC_-1' });
    assert.deepEqual(parseOpen(new URLSearchParams('observe=AbC')), { kind: 'observe', session: 'AbC' });
    assert.equal(parseOpen(new URLSearchParams('target=x&cols=0&rows=24')), 'cols and rows: whole numbers from 1 to 1000');
    assert.equal(parseOpen(new URLSearchParams('cols=80&rows=24')), 'target: name a target (the login name an SSH user would type)');
    assert.equal(parseOpen(new URLSearchParams('target=x&cols=80&rows=24&term=a%20b')), 'term: a terminal type such as xterm-256color');
    assert.equal(parseOpen(new URLSearchParams('resume=../x')), 'resume: not a session id');
  });
});

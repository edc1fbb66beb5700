// test-budget: file 300 s, test 90 s
/**
 * Browser terminals through a real WebSocket (the `ws` client a page stands in for) on the local
 * backend: what a person at the page notices — output and exit status, the terminal size, resume
 * after a dropped socket with the same shell, nothing left running after the grace period,
 * read-only observers, an explicit end, and a slow page that cannot make the bridge buffer
 * without bound.
 */
import assert from 'node:assert/strict';
import { readAuditEvents } from '../helpers/audit.ts';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { scrape, value } from '../helpers/diag.ts';
import { InteractiveSsh, makeClientKey } from '../helpers/ssh-client.ts';
import { startTerminalServer, TermClient, webIdentity, type TerminalServer } from '../helpers/web-terminal.ts';
import { CLOSE } from '../../src/web/terminal/protocol.ts';

const TARGET = 'default.anything';

function policyText(): string {
  const [alice, bob, carol] = ['alice', 'bob', 'carol'].map((n) => makeClientKey(n));
  return `version: 1
identities:
  - name: alice
    keys: [${alice!.publicLine}]
  - name: bob
    keys: [${bob!.publicLine}]
  - name: carol
    keys: [${carol!.publicLine}]
rules:
  - identities: [alice, bob, carol]
    namespaces: [default]
    pods: ['*']
    shell: true
    commands: true
    tty: true
  - identities: [bob]
    namespaces: [default]
    pods: ['*']
    observe: true
`;
}

const identities = { alice: webIdentity('alice'), bob: webIdentity('bob'), carol: webIdentity('carol') };

/** Processes on this machine whose command line contains `marker`. */
function running(marker: string): string[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.includes(marker) && !l.includes('ps -eo'));
}

describe('browser terminal (TerminalHub over a WebSocket, local backend)', () => {
  let b: TestBridge;
  let short: TestBridge;
  let web: TerminalServer;
  let webShort: TerminalServer;
  let dir: string;
  const clients: TermClient[] = [];
  const client = (url: string) => {
    const c = new TermClient(url);
    clients.push(c);
    return c;
  };
  const open = (query: Record<string, string | number>, server = web) => client(server.url({ as: 'alice', target: TARGET, cols: 80, rows: 24, ...query }));

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-web-'));
    const policy = path.join(dir, 'policy.yaml');
    fs.writeFileSync(policy, policyText());
    // No keepalive cut here: the bounded-output test keeps a page paused with full socket buffers
    // for as long as its producer takes to block, which on a loaded machine outlasted two pings:
    // the bridge then rightly cut the page as gone (no pong, no byte taken) and the test hung.
    b = await startTestBridge({ backend: 'local', policy, webResumeGrace: 30, webKeepalive: 0 });
    short = await startTestBridge({ backend: 'local', policy, webResumeGrace: 1, idleTimeout: 4, sessionWarning: 2 });
    web = await startTerminalServer(b.bridge.terminals, identities);
    webShort = await startTerminalServer(short.bridge.terminals, identities);
  });
  after(async () => {
    for (const c of clients) c.ws.terminate();
    await web?.close();
    await webShort?.close();
    await b?.close();
    await short?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs a command: its output, then its exit status, then a normal close', async () => {
    const c = open({ command: 'echo "hello from $0"; exit 3' });
    const session = await c.untilMessage('session');
    assert.equal(session.target, TARGET);
    assert.equal(session.observer, false);
    assert.equal(session.graceSeconds, 30);
    assert.match(String(session.id), /^[A-Za-z0-9_-]{22}$/);
    const exit = await c.untilMessage('exit');
    assert.deepEqual(exit, { type: 'exit', status: 3 });
    assert.match(c.text(), /hello from /);
    assert.equal(await c.closed, CLOSE.normal);
  });

  it('starts the process at the browser size and TERM (no 80x24 first)', async () => {
    const c = open({ command: 'echo "size=$(stty size) term=$TERM"', cols: 123, rows: 37, term: 'xterm-256color' });
    await c.untilMessage('exit');
    assert.match(c.text(), /size=37 123 term=xterm-256color/);
  });

  it('follows resizes and reads stdin', async () => {
    const c = open({});
    await c.untilMessage('session');
    c.send({ type: 'resize', cols: 101, rows: 29 });
    c.type('echo "re""ady"; read line; echo "got:$line size:$(stty size)"\r');
    // Only once the shell runs the line: bash's switch out of line editing drops typed-ahead input.
    await c.untilOutput(/ready/);
    c.type('abc\r');
    await c.untilOutput(/got:abc size:29 101/);
    c.type('exit 0\r');
    assert.deepEqual(await c.untilMessage('exit'), { type: 'exit', status: 0 });
  });

  it('resumes after the socket drops: the screen comes back and the shell is the same', async () => {
    const first = open({});
    const { id } = await first.untilMessage('session');
    first.type('export PB_RESUME=kept-42; echo "set:$PB_RESUME"\r');
    await first.untilOutput(/set:kept-42/);
    first.ws.terminate(); // a network drop: no close frame
    await first.closed;

    const again = client(web.url({ as: 'alice', resume: String(id) }));
    const session = await again.untilMessage('session');
    assert.equal(session.resumed, true);
    assert.equal(session.id, id);
    const screen = await again.untilMessage('screen');
    assert.match(String(screen.data), /set:kept-42/);
    again.type('echo "still:$PB_RESUME"\r');
    await again.untilOutput(/still:kept-42/);
    // The screen came first: the live output holds only what happened after the resume.
    assert.doesNotMatch(again.text(), /set:kept-42/);

    // Another identity cannot take it.
    const thief = client(web.url({ as: 'carol', resume: String(id) }));
    assert.equal(await thief.closed, CLOSE.forbidden);
    assert.match(String(thief.message('error')?.message), /belongs to another identity/);
    again.type('exit\r');
    await again.untilMessage('exit');
  });

  it('a page that comes back after its process ended (within the grace) reads its exit status, as an attached page would', async () => {
    const flag = path.join(dir, 'exit-now');
    const c = open({ command: `while [ ! -e ${flag} ]; do sleep 0.1; done; exit 7` });
    const { id } = await c.untilMessage('session');
    c.ws.terminate(); // the page goes away (a refresh, a drop) ...
    await c.closed;
    fs.writeFileSync(flag, ''); // ... and meanwhile its process exits
    const terminal = String(id).slice(0, 8);
    await c.until(() => b.logs.some((l) => l.terminal === terminal && l.msg === 'session end'), 'the process to end');
    const back = client(web.url({ as: 'alice', resume: String(id) }));
    assert.deepEqual(await back.untilMessage('exit'), { type: 'exit', status: 7 });
    assert.equal(await back.closed, CLOSE.normal);
    // Only its own identity learns how it ended.
    const other = client(web.url({ as: 'carol', resume: String(id) }));
    assert.equal(await other.closed, CLOSE.noSuchSession);
    assert.equal(other.message('exit'), undefined);
  });

  it('after the grace period the process is ended and nothing is left running', async () => {
    const marker = `98765${process.pid % 1000}`;
    const c = open({}, webShort);
    const { id } = await c.untilMessage('session');
    c.type(`sleep ${marker} & sleep ${marker}1\r`);
    await c.until(() => running(`sleep ${marker}1`).length > 0, 'the sleeps to run');
    assert.equal(short.bridge.terminals.size(), 1);
    c.ws.terminate();
    await c.until(() => short.bridge.terminals.size() === 0, 'the terminal to end after its grace period');
    assert.deepEqual(running(`sleep ${marker}`), []);
    const late = client(webShort.url({ as: 'alice', resume: String(id) }));
    assert.equal(await late.closed, CLOSE.noSuchSession);
  });

  it('the idle timeout applies as over SSH, its warning shown as a notice', async () => {
    const c = open({}, webShort);
    await c.untilMessage('session');
    const notice = await c.untilMessage('notice');
    assert.match(String(notice.message), /idle session; it ends in \d+ s unless there is activity/);
    const exit = await c.untilMessage('exit');
    assert.match(String(exit.error), /session ended: idle for 4 s/);
    assert.equal(await c.closed, CLOSE.normal);
  });

  it('observers watch read-only, with a notice to the owner; without the capability they are refused', async () => {
    const owner = open({});
    const { id } = await owner.untilMessage('session');
    owner.type('echo "before:$((6*7))"\r');
    await owner.untilOutput(/before:42/);

    const bob = client(web.url({ as: 'bob', observe: String(id) }));
    const seen = await bob.untilMessage('session');
    assert.equal(seen.observer, true);
    assert.match(String((await bob.untilMessage('screen')).data), /before:42/);
    await owner.until(() => owner.messages.some((m) => m.type === 'notice' && /bob is watching this terminal/.test(String(m.message))), 'the owner told bob joined');
    await owner.until(() => owner.messages.some((m) => m.type === 'observers' && m.count === 1), 'an observer count of 1');

    // bob's keystrokes, resizes and signals go nowhere.
    bob.type('echo OBSERVER-TYPED\r');
    bob.send({ type: 'resize', cols: 20, rows: 5 });
    bob.send({ type: 'signal', name: 'INT' });
    owner.type('echo "owner:$((5*5)) size:$(stty size)"\r');
    await owner.untilOutput(/owner:25 size:24 80/);
    await bob.untilOutput(/owner:25/);
    assert.doesNotMatch(owner.text(), /OBSERVER-TYPED/);

    const carol = client(web.url({ as: 'carol', observe: String(id) }));
    assert.equal(await carol.closed, CLOSE.forbidden);
    assert.match(String(carol.message('error')?.message), /identity "carol" may not observe terminals in default\/anything/);

    bob.ws.close();
    await owner.until(() => owner.messages.some((m) => m.type === 'notice' && /bob stopped watching/.test(String(m.message))), 'the owner told bob left');
    owner.type('exit\r');
    await owner.untilMessage('exit');
  });

  it('"end" ends the session at once and it cannot be resumed', async () => {
    const marker = `87654${process.pid % 1000}`;
    const c = open({});
    const { id } = await c.untilMessage('session');
    c.type(`sleep ${marker}\r`);
    await c.until(() => running(`sleep ${marker}`).length > 0, 'the sleep to run');
    c.send({ type: 'end' });
    const exit = await c.untilMessage('exit');
    assert.match(String(exit.error), /session ended: ended from the browser/);
    assert.match(String(c.message('error')?.message), /session ended: ended from the browser/);
    assert.equal(await c.closed, CLOSE.normal);
    assert.deepEqual(running(`sleep ${marker}`), []);
    const late = client(web.url({ as: 'alice', resume: String(id) }));
    assert.equal(await late.closed, CLOSE.noSuchSession);
  });

  it('SSH sessions and browser terminals count against one per-identity session limit', async () => {
    const one = await startTestBridge({ backend: 'local', maxSessionsPerIdentity: 1 });
    const server = await startTerminalServer(one.bridge.terminals, { me: webIdentity('tester@podbridge-test') }); // the test key's comment: its identity
    const ssh = new InteractiveSsh({ port: one.port, key: one.key, login: TARGET, command: 'echo ssh-ready; sleep 60' });
    try {
      await ssh.waitFor(/ssh-ready/);
      const c = client(server.url({ as: 'me', target: TARGET, cols: 80, rows: 24 }));
      assert.equal(await c.closed, CLOSE.limit);
      assert.match(String(c.message('error')?.message), /identity "tester@podbridge-test" has 1 sessions open \(the limit\); end one/);
    } finally {
      ssh.kill();
      await server.close();
      await one.close();
    }
  });

  it('a page that stops reading holds the process back (bounded), and a slow observer is dropped without slowing the owner', async () => {
    const counter = path.join(dir, 'lines');
    // 12 000 lines of 1000 bytes: well over all the buffers on the way (the producer stood still
    // after about 4 300 lines in every run seen), and small enough that a loaded 2-core machine
    // moves it within the test's budget (30 000 lines took over 90 s there, at the web door's
    // ~2 MB/s with the screen parsed server-side).
    const producer = `i=0; while [ $i -lt 12000 ]; do printf '%0999d\\n' $i; i=$((i+1)); [ $((i % 100)) -eq 0 ] && echo $i > ${counter}; done; echo; echo PRODUCER-DONE`;
    const c = open({ command: producer });
    const { id } = await c.untilMessage('session');
    await c.until(() => c.bytes > 0, 'the first output');
    c.ws.pause(); // the page stops reading: TCP backpressure builds up to the bridge
    const lines = () => (fs.existsSync(counter) ? Number(fs.readFileSync(counter, 'utf8').trim() || 0) : 0);
    // Wait until the producer stands still (blocked writing), then see how far it got.
    let last = -1;
    await c.until(() => {
      const now = lines();
      const still = now === last;
      last = now;
      return still;
    }, 'the producer to block', 60_000);
    assert.ok(last < 10_000, `the producer ran ahead by ${last} KB of output while the page read nothing (bounded: at most a few socket and pty buffers)`);

    const slow = client(web.url({ as: 'bob', observe: String(id) }));
    await slow.untilMessage('screen');
    slow.ws.pause();
    c.ws.resume();
    await c.untilOutput(/PRODUCER-DONE/, 120_000);
    assert.deepEqual(await c.untilMessage('exit'), { type: 'exit', status: 0 });
    slow.ws.resume();
    assert.notEqual(await slow.closed, CLOSE.normal, 'the slow observer was cut');
    assert.ok(slow.bytes < c.bytes);
  });

  it('keepalive: a page that neither pongs nor takes bytes is cut, one reading slowly through a backlog is not; the web door shows in the sessions gauge and the audit trail', async () => {
    const audit = path.join(dir, 'keepalive-audit.jsonl');
    const k = await startTestBridge({ backend: 'local', policy: path.join(dir, 'policy.yaml'), webKeepalive: 1, auditLog: audit, diagListen: '127.0.0.1:0' });
    const server = await startTerminalServer(k.bridge.terminals, identities);
    const diag = k.bridge.diag!.address.port;
    const events = (): Array<Record<string, unknown>> => readAuditEvents(audit);
    const sessionsOpen = async () => {
      const m = await scrape(diag);
      return { ssh: value(m, 'podbridge_sessions_open', { door: 'ssh' }), web: value(m, 'podbridge_sessions_open', { door: 'web' }) };
    };
    let reading: NodeJS.Timeout | undefined;
    try {
      // A page that stops reading altogether (a laptop asleep): it is cut, its terminal waits.
      const asleep = client(server.url({ as: 'alice', target: TARGET, cols: 80, rows: 24 }));
      const first = String((await asleep.untilMessage('session')).id).slice(0, 8);
      asleep.type('echo "up:$((3*4))"\r');
      await asleep.untilOutput(/up:12/);
      assert.deepEqual(await sessionsOpen(), { ssh: 0, web: 1 });
      asleep.ws.pause();
      const cut = () => events().find((e) => e.event === 'disconnect' && e.terminal === first);
      await asleep.until(() => cut() !== undefined, 'the sleeping page to be cut');
      assert.equal(cut()!.reason, 'no answer to keepalive pings and no bytes taken');
      assert.equal(cut()!.door, 'web');
      assert.equal(cut()!.identity, 'alice');
      const connect = events().find((e) => e.event === 'connect' && e.terminal === first);
      assert.equal(connect?.door, 'web');
      assert.equal(connect?.mode, 'new');
      assert.match(String(connect?.remote), /^127\.0\.0\.1:\d+$/);
      // Cut, but its terminal runs on for the resume grace period: still an open web session.
      assert.deepEqual(await sessionsOpen(), { ssh: 0, web: 1 });

      // A page that reads one socket read (up to 64 KiB) every 250 ms, slower than the bridge sends:
      // its pongs wait behind megabytes of buffered output, seconds late, but the kernel keeps
      // taking bytes for it, so it is alive.
      // It waits for `done` before exiting: a process that exits while the bridge holds its pty
      // back lost its last ~7 KB on the local backend (seen here; noted in the report, not this test's subject).
      const done = path.join(dir, 'slow-done');
      const producer = `head -c 3000000 /dev/zero | tr '\\0' x; echo; echo PRODUCER-DONE; while [ ! -e ${done} ]; do sleep 0.1; done`;
      const slow = client(server.url({ as: 'alice', target: TARGET, cols: 80, rows: 24, command: producer }));
      const second = String((await slow.untilMessage('session')).id).slice(0, 8);
      const socket = (slow.ws as unknown as { _socket: { on(e: 'data', f: () => void): void } })._socket;
      slow.ws.pause();
      socket.on('data', () => slow.ws.pause());
      reading = setInterval(() => slow.ws.resume(), 250);
      // Slowly through the first 1.5 MB, while the bridge still has output queued for it (once the
      // process is done and the rest sits in the page's own receive buffer, the bridge can see no
      // progress: a browser's network stack empties that buffer at once, whatever its script does).
      const cutSlow = () => events().find((e) => e.event === 'disconnect' && e.terminal === second);
      await slow.until(() => slow.bytes >= 1_500_000 || cutSlow() !== undefined, 'the slow page to read 1.5 MB', 80_000);
      assert.equal(cutSlow(), undefined, 'the slow page was not cut');
      clearInterval(reading);
      socket.on('data', () => slow.ws.resume());
      slow.ws.resume();
      await slow.untilOutput(/PRODUCER-DONE/, 80_000);
      fs.writeFileSync(done, '');
      assert.deepEqual(await slow.untilMessage('exit'), { type: 'exit', status: 0 });
      assert.equal(await slow.closed, CLOSE.normal);
      await slow.until(() => cutSlow() !== undefined, 'its disconnect audit event');
      const gone = cutSlow();
      assert.equal(gone?.reason, 'the terminal ended');
      assert.equal(gone?.code, CLOSE.normal);
      assert.ok(slow.bytes >= 3_000_000);
    } finally {
      clearInterval(reading);
      await server.close();
      await k.close();
    }
  });
});

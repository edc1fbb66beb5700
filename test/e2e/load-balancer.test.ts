/**
 * Two bridge replicas behind a real HAProxy, as in a cluster behind a load balancer: one host key
 * shared by both, the client's own address (not the balancer's) in every audit line through
 * PROXY protocol v2 and v1, a replica killed mid-run takes only its own sessions, and PROXY
 * headers are believed only from the configured balancer.
 *
 * Loopback addresses stand for three machines: the client binds 127.0.0.2, HAProxy connects to
 * the replicas from 127.0.0.3 (the only address in --proxy-protocol-from), the replicas listen on
 * 127.0.0.1.
 *
 * Behind the balancer, authorized_keys `from="…"` and certificate `source-address` are matched
 * against the client address from the PROXY header: each pattern below lets the balancer's own
 * address in and the client's out (or the reverse), so a bridge that matched the socket's
 * address would fail every one of those tests.
 */
// test-budget: file 240 s, test 120 s
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startBridgeProcess, type BridgeProcess } from '../helpers/bridge-process.ts';
import { freePort, startHaproxy, type HaproxyProcess } from '../helpers/haproxy.ts';
import { InteractiveSsh, makeClientKey, runSsh, type ClientKey, type SshResult } from '../helpers/ssh-client.ts';
import { waitUntil } from '../helpers/wait.ts';
import { readAuditEvents } from '../helpers/audit.ts';

const CLIENT = '127.0.0.2';
const BALANCER = '127.0.0.3';

let dir: string;
let key: ClientKey;
let replicas: BridgeProcess[];
let audits: string[];
let haproxy: HaproxyProcess;
let v2Port: number;
let v1Port: number;

const auditLines = (i: number): Array<Record<string, unknown>> =>
  readAuditEvents(audits[i]!);

async function startReplica(i: number): Promise<BridgeProcess> {
  return startBridgeProcess({
    hostKey: [path.join(dir, 'ssh_host_ed25519_key')],
    authorizedKeys: path.join(dir, 'authorized_keys'),
    auditLog: audits[i]!,
    proxyProtocolFrom: [BALANCER],
    logLevel: 'info',
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-lb-'));
  key = makeClientKey();
  fs.writeFileSync(path.join(dir, 'authorized_keys'), `${key.publicLine}\n`);
  // The host key Secret both replicas mount: made once, ahead of time.
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'ssh_host_ed25519_key')]);
  audits = [path.join(dir, 'audit-a.jsonl'), path.join(dir, 'audit-b.jsonl')];
  replicas = [await startReplica(0), await startReplica(1)];
  v2Port = await freePort();
  v1Port = await freePort();
  const servers = (proxy: string) => replicas.map((r, i) => `  server r${i} 127.0.0.1:${r.port} ${proxy}`).join('\n');
  haproxy = await startHaproxy(
    [
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 120s',
      '  timeout server 120s',
      // A replica that is gone refuses the connection: try the other one.
      '  retries 2',
      '  option redispatch',
      `frontend ssh_v2`,
      `  bind 127.0.0.1:${v2Port}`,
      '  default_backend replicas_v2',
      `frontend ssh_v1`,
      `  bind 127.0.0.1:${v1Port}`,
      '  default_backend replicas_v1',
      'backend replicas_v2',
      '  balance roundrobin',
      `  source ${BALANCER}`,
      servers('send-proxy-v2'),
      'backend replicas_v1',
      '  balance roundrobin',
      `  source ${BALANCER}`,
      servers('send-proxy'),
      '',
    ].join('\n'),
    [v2Port, v1Port],
  );
});

after(async () => {
  await haproxy?.stop();
  for (const r of replicas ?? []) await r.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('two replicas behind HAProxy', () => {
  it('both replicas, and the balancer in front of them, answer with the same host key', () => {
    const scan = (port: number) =>
      execFileSync('ssh-keyscan', ['-t', 'ed25519', '-p', String(port), '127.0.0.1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split(' ')
        .slice(1)
        .join(' ');
    const expected = fs.readFileSync(path.join(dir, 'ssh_host_ed25519_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    assert.equal(scan(replicas[0]!.port), expected);
    assert.equal(scan(replicas[1]!.port), expected);
    assert.equal(scan(v2Port), expected);
    assert.equal(scan(v2Port), expected);
  });

  for (const [version, port] of [['v2', () => v2Port], ['v1', () => v1Port]] as const) {
    it(`puts the client's address, not the balancer's, in the audit log (PROXY ${version})`, async () => {
      const seen = new Set(audits.flatMap((_, i) => auditLines(i).map((l) => `${l.conn}`)));
      const r = await runSsh({ port: port(), key, login: 'x', command: `echo through-${version}`, extraArgs: ['-b', CLIENT] });
      assert.equal(r.stdout.toString(), `through-${version}\n`, r.stderr);
      assert.equal(r.code, 0);
      await waitUntil('the disconnect event', () => audits.some((_, i) => auditLines(i).some((l) => !seen.has(`${l.conn}`) && l.event === 'disconnect')));
      const fresh = audits.flatMap((_, i) => auditLines(i)).filter((l) => !seen.has(`${l.conn}`));
      const starts = fresh.filter((l) => l.event === 'session-start');
      assert.equal(starts.length, 1);
      assert.match(String(starts[0]!.remote), /^127\.0\.0\.2:\d+$/);
      for (const l of fresh) assert.doesNotMatch(String(l.remote), /^127\.0\.0\.[13]:/, JSON.stringify(l));
    });
  }

  it('a PROXY header from an address not in --proxy-protocol-from is refused and not believed', async () => {
    const closed = await new Promise<string>((resolve) => {
      const s = net.connect({ port: replicas[0]!.port, host: '127.0.0.1', localAddress: CLIENT }, () => s.write('PROXY TCP4 10.9.9.9 127.0.0.1 1111 22\r\nSSH-2.0-OpenSSH_9.2\r\n'));
      let got = '';
      s.on('data', (b: Buffer) => (got += b.toString('latin1')));
      s.on('error', () => {});
      s.on('close', () => resolve(got));
    });
    // The bridge's version line may have gone out first; it never got to key exchange.
    assert.doesNotMatch(closed, /curve25519/);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!auditLines(0).some((l) => String(l.remote).startsWith('10.9.9.9')), 'the forged address reached the audit log');
  });

  it('garbage from the balancer\'s address is cut with a log line, and the replica keeps serving', async () => {
    const replica = replicas[1]!;
    await new Promise<void>((resolve) => {
      const s = net.connect({ port: replica.port, host: '127.0.0.1', localAddress: BALANCER }, () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.on('error', () => {});
      s.on('close', () => resolve());
    });
    await waitUntil('the log line', () => replica.logs.some((l) => l.msg === 'connection from a PROXY protocol peer dropped: bad or missing header'));
    const line = replica.logs.find((l) => l.msg === 'connection from a PROXY protocol peer dropped: bad or missing header')!;
    assert.match(String(line.err), /^no PROXY protocol header \(the connection starts with "GET \/ HTTP\/1\.1/);
    assert.match(String(line.via), /^127\.0\.0\.3:\d+$/);
    const r = await runSsh({ port: v2Port, key, login: 'x', command: 'echo still-serving', extraArgs: ['-b', CLIENT] });
    assert.equal(r.stdout.toString(), 'still-serving\n');
  });

  it('killing one replica mid-run loses only its own sessions; new sessions go to the other', async () => {
    // Round robin: two sessions in a row land on different replicas.
    const terms = [0, 1].map(() => null as InteractiveSsh | null);
    try {
      for (const i of [0, 1]) {
        const t = new InteractiveSsh({ port: v2Port, key, login: 'x', command: `echo ready-$((${i}+1)); cat`, extraArgs: ['-b', CLIENT] });
        terms[i] = t;
        await t.waitFor(new RegExp(`ready-${i + 1}`));
      }
      const counts = await Promise.all(replicas.map((r) => r.stats().then((s) => s.sessions)));
      assert.deepEqual(counts, [1, 1], 'one session on each replica');
      const victim = replicas[0]!;
      victim.child.kill('SIGKILL');
      await victim.exited;
      const codes = await Promise.race([
        Promise.any(terms.map((t, i) => t!.waitExit(30_000).then((code) => ({ i, code })))),
        // Unreferenced: left pending, it kept the file alive 30 s after its last test.
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no session ended after the kill')), 30_000).unref()),
      ]);
      assert.equal(codes.code, 255, 'the killed replica\'s session ended as a lost connection');
      const survivor = terms[1 - codes.i]!;
      const mark = survivor.output.length;
      survivor.write('still-here\r');
      await survivor.waitFor(/still-here/, 15_000, mark);
      // A new connection through the balancer reaches the live replica.
      const r = await runSsh({ port: v2Port, key, login: 'x', command: 'echo after-kill', extraArgs: ['-b', CLIENT] });
      assert.equal(r.stdout.toString(), 'after-kill\n', r.stderr);
    } finally {
      for (const t of terms) t?.kill();
    }
  });
});

describe('from= and certificate source-address behind HAProxy', () => {
  let gate: BridgeProcess;
  let balancer: HaproxyProcess;
  let port: number;
  const near = makeClientKey('near@client');
  const far = makeClientKey('far@client');
  const bobKey = makeClientKey('bob@client');
  let caFile: string;

  /** bob's key with a certificate from the test CA (real ssh-keygen), restricted to `sources`. */
  function certified(name: string, sources: string): { key: ClientKey; args: string[] } {
    const keyFile = path.join(dir, `bob-${name}`);
    fs.copyFileSync(bobKey.keyFile, keyFile);
    fs.chmodSync(keyFile, 0o600);
    fs.copyFileSync(`${bobKey.keyFile}.pub`, `${keyFile}.pub`);
    execFileSync('ssh-keygen', ['-q', '-s', caFile, '-I', `bob-${name}`, '-n', 'bob', '-V', '-5m:+1h', '-O', `source-address=${sources}`, `${keyFile}.pub`]);
    return { key: { dir, keyFile, publicLine: fs.readFileSync(`${keyFile}.pub`, 'utf8').trim() }, args: ['-o', `CertificateFile=${keyFile}-cert.pub`] };
  }

  const viaBalancer = (key: ClientKey, command: string, extraArgs: string[] = []): Promise<SshResult> =>
    runSsh({ port, key, login: 'team.pod', command, extraArgs: ['-b', CLIENT, ...extraArgs] });

  async function refusedWith(r: SshResult, reason: string): Promise<void> {
    assert.equal(r.code, 255);
    assert.equal(r.stdout.length, 0);
    assert.match(r.stderr, /Permission denied \(publickey\)/);
    // The log line names the reason, then which identity's key or which CA it was.
    await waitUntil(`the log line "auth refused: ${reason}"; seen: ${JSON.stringify(gate.logs.filter((l) => String(l.msg).startsWith('auth refused')).map((l) => l.msg))}`, () => gate.logs.some((l) => String(l.msg).startsWith(`auth refused: ${reason}`)));
  }

  before(async () => {
    caFile = path.join(dir, 'user_ca');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'test-user-ca', '-f', caFile]);
    const policy = path.join(dir, 'policy.yaml');
    fs.writeFileSync(
      policy,
      [
        'version: 1',
        'identities:',
        '  - name: near',
        '    keys:',
        // Only the client's own address: the balancer's (127.0.0.3) would not match.
        `      - from="${CLIENT}" ${near.publicLine}`,
        '  - name: far',
        '    keys:',
        // Everything on loopback (the balancer included) except the client.
        `      - from="!${CLIENT},127.0.0.0/8" ${far.publicLine}`,
        '  - name: bob',
        '    principals: [bob]',
        'certificateAuthorities:',
        '  - name: test',
        `    key: ${fs.readFileSync(`${caFile}.pub`, 'utf8').trim()}`,
        'rules:',
        '  - identities: [near, far, bob]',
        '    namespaces: ["*"]',
        '    pods: ["*"]',
        '    commands: true',
        '',
      ].join('\n'),
    );
    gate = await startBridgeProcess({
      hostKey: [path.join(dir, 'ssh_host_ed25519_key')],
      policy,
      proxyProtocolFrom: [BALANCER],
      logLevel: 'info',
    });
    port = await freePort();
    balancer = await startHaproxy(
      ['defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 60s', '  timeout server 60s', 'frontend ssh', `  bind 127.0.0.1:${port}`, '  default_backend gate', 'backend gate', `  source ${BALANCER}`, `  server g 127.0.0.1:${gate.port} send-proxy-v2`, ''].join('\n'),
      [port],
    );
  });

  after(async () => {
    await balancer?.stop();
    await gate?.stop();
  });

  it('from= naming the client\'s address lets the key in through the balancer', async () => {
    const r = await viaBalancer(near, 'echo near-in');
    assert.equal(r.stdout.toString(), 'near-in\n', r.stderr);
    assert.equal(r.code, 0);
  });

  it('from= that excludes the client refuses the key, although it allows the balancer\'s address', async () => {
    await refusedWith(await viaBalancer(far, 'echo far-in'), `source address ${CLIENT} is not allowed by from="!${CLIENT},127.0.0.0/8" (identity "far"`);
  });

  it('a certificate whose source-address is the client\'s address is accepted through the balancer', async () => {
    const c = certified('client-only', `${CLIENT}/32`);
    const r = await viaBalancer(c.key, 'echo cert-in', c.args);
    assert.equal(r.stdout.toString(), 'cert-in\n', r.stderr);
    assert.equal(r.code, 0);
  });

  it('a certificate whose source-address is only the balancer\'s address is refused', async () => {
    const c = certified('balancer-only', `${BALANCER}/32`);
    await refusedWith(await viaBalancer(c.key, 'echo cert-in', c.args), `source address ${CLIENT} not in certificate source-address [${BALANCER}/32]`);
  });
});

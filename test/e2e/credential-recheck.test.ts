/**
 * Credentials are re-resolved at every session open and on every policy change, through a real
 * OpenSSH ControlMaster connection (one authentication, many sessions): changed Kubernetes
 * groups reach the next session (the fake API server sees them), a removed key or a revoked
 * certificate closes the connection with a message, an expired certificate opens no new
 * session, and a connection ends at its maximum lifetime.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { InteractiveSsh, makeClientKey, runSsh, sshArgs, type ClientKey } from '../helpers/ssh-client.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-recheck-'));
const alice = makeClientKey('alice@laptop');
const bobKey = makeClientKey('bob@laptop');
const ca = path.join(dir, 'user_ca');
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'corp-user-ca', '-f', ca]);

function certify(name: string, args: string[]): ClientKey {
  const keyFile = path.join(dir, `bob-${name}`);
  fs.copyFileSync(bobKey.keyFile, keyFile);
  fs.chmodSync(keyFile, 0o600);
  fs.copyFileSync(`${bobKey.keyFile}.pub`, `${keyFile}.pub`);
  execFileSync('ssh-keygen', ['-q', '-s', ca, '-I', `bob-${name}`, '-n', 'bob', ...args, `${keyFile}.pub`]);
  return { dir, keyFile, publicLine: fs.readFileSync(`${keyFile}.pub`, 'utf8').trim() };
}

interface Policy {
  aliceKey: boolean;
  aliceGroups: string[];
  revoked: number[];
}

function policyText(p: Policy): string {
  return `version: 1
identities:
  - name: alice
    keys:${p.aliceKey ? `\n      - ${alice.publicLine}` : ' []'}
    kubernetes: { user: alice@example.com, groups: [${p.aliceGroups.join(', ')}] }
  - name: bob
    principals: [bob]
    kubernetes: { user: bob@example.com }
certificateAuthorities:
  - name: corp
    key: ${fs.readFileSync(`${ca}.pub`, 'utf8').trim()}
    revoked:
      serials: [${p.revoked.join(', ')}]
rules:
  - identities: [alice, bob]
    namespaces: [team-a]
    pods: ["*"]
    shell: true
    tty: true
    commands: true
`;
}

/** `ssh -M -N` holding one authenticated connection that later `ssh -S` calls share. */
class Master {
  readonly socket: string;
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly port: number,
    readonly key: ClientKey,
    readonly extra: string[] = [],
  ) {
    this.socket = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pb-cm-')), 'm');
    this.child = spawn('ssh', [...sshArgs(port, key, [...extra, '-M', '-N', '-S', this.socket]), 'team-a.web-1@127.0.0.1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  async ready(): Promise<void> {
    for (let i = 0; i < 600; i++) {
      if (this.child.exitCode !== null) throw new Error(`master exited: ${this.stderr}`);
      try {
        execFileSync('ssh', ['-S', this.socket, '-O', 'check', 'x'], { stdio: 'ignore' });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`master not ready: ${this.stderr}`);
  }

  /** A session over the master only: ControlMaster=no and no fallback to a fresh login. */
  args(): string[] {
    return ['-S', this.socket, '-o', 'ControlMaster=no'];
  }

  async stop(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
    fs.rmSync(path.dirname(this.socket), { recursive: true, force: true });
  }
}

describe('credentials re-checked on an open connection (OpenSSH ControlMaster)', () => {
  let cluster: TestCluster;
  let b: TestBridge;
  const policyFile = path.join(dir, 'policy.yaml');
  const write = (p: Partial<Policy> = {}) => fs.writeFileSync(policyFile, policyText({ aliceKey: true, aliceGroups: ['team-a-devs', 'sre'], revoked: [666], ...p }));

  before(async () => {
    write();
    cluster = await startTestCluster();
    b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig, policy: policyFile, key: alice, backoffThreshold: 1000 });
  });
  after(async () => {
    await b?.close();
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const lastExec = () => cluster.api.requests.filter((c) => c.path.endsWith('/exec')).at(-1);

  it('a new session carries the groups of the policy in force, not those of the login', async () => {
    write();
    b.bridge.reload('test');
    const m = new Master(b.port, alice);
    try {
      await m.ready();
      const first = await runSsh({ port: b.port, key: alice, login: 'team-a.web-1', command: 'echo one', extraArgs: m.args() });
      assert.equal(first.stdout.toString(), 'one\n', first.stderr);
      assert.deepEqual([...lastExec()!.groups].filter((g) => !g.startsWith('system:')).sort(), ['sre', 'team-a-devs']);
      write({ aliceGroups: ['team-a-devs'] });
      assert.ok(b.bridge.reload('test').ok);
      const second = await runSsh({ port: b.port, key: alice, login: 'team-a.web-1', command: 'echo two', extraArgs: m.args() });
      assert.equal(second.stdout.toString(), 'two\n', second.stderr);
      assert.deepEqual([...lastExec()!.groups].filter((g) => !g.startsWith('system:')), ['team-a-devs'], 'the API server no longer sees the removed group sre');
      assert.equal(lastExec()!.headers['impersonate-group'], 'team-a-devs');
      assert.equal(m.child.exitCode, null, 'the connection itself stays: the key still resolves');
    } finally {
      await m.stop();
      write();
      b.bridge.reload('test');
    }
  });

  it('removing the key closes the connection and its running session, with a message', async () => {
    const m = new Master(b.port, alice);
    const s = new InteractiveSsh({ port: b.port, key: alice, login: 'team-a.web-1', extraArgs: m.args() });
    try {
      await m.ready();
      s.write('echo ALIVE-$((40+2))\r');
      await s.waitFor(/ALIVE-42/);
      write({ aliceKey: false });
      assert.ok(b.bridge.reload('test').ok);
      await s.waitFor(/podbridge: session ended: your credential is no longer accepted by the access policy; log in again/);
      assert.equal(await s.waitExit(), 255);
      await m.exited;
      assert.ok(b.logs.some((l) => l.msg === 'credential no longer accepted; closing the connection' && /key not in/.test(String(l.reason))));
      const again = await runSsh({ port: b.port, key: alice, login: 'team-a.web-1', command: 'echo in' });
      assert.equal(again.code, 255);
      assert.match(again.stderr, /Permission denied/);
    } finally {
      s.kill();
      await m.stop();
      write();
      b.bridge.reload('test');
    }
  });

  it('revoking a certificate closes the connection it opened', async () => {
    const cert = certify('77', ['-V', '-5m:+1h', '-z', '77']);
    const m = new Master(b.port, cert, ['-o', `CertificateFile=${cert.keyFile}-cert.pub`]);
    try {
      await m.ready();
      const ok = await runSsh({ port: b.port, key: cert, login: 'team-a.web-1', command: 'echo bob', extraArgs: m.args() });
      assert.equal(ok.stdout.toString(), 'bob\n', ok.stderr);
      write({ revoked: [666, 77] });
      assert.ok(b.bridge.reload('test').ok);
      await m.exited;
      assert.ok(b.logs.some((l) => l.msg === 'credential no longer accepted; closing the connection' && /serial revoked/.test(String(l.reason))));
    } finally {
      await m.stop();
      write();
      b.bridge.reload('test');
    }
  });

  it('a certificate that expires while the connection is open opens no new session', async () => {
    // Valid for 20 s more: the connection and one session happen in that window; the test then
    // waits for the clock, not for a fixed time.
    const until = new Date(Date.now() + 20_000);
    const stamp = until.toISOString().replace(/[-:T]/g, '').slice(0, 14);
    const cert = certify('short', ['-V', `-5m:${stamp}Z`, '-z', '88']);
    const m = new Master(b.port, cert, ['-o', `CertificateFile=${cert.keyFile}-cert.pub`]);
    try {
      await m.ready();
      const ok = await runSsh({ port: b.port, key: cert, login: 'team-a.web-1', command: 'echo before', extraArgs: m.args() });
      assert.equal(ok.stdout.toString(), 'before\n', ok.stderr);
      while (Date.now() < until.getTime() + 1500) await new Promise((r) => setTimeout(r, 250));
      const late = await runSsh({ port: b.port, key: cert, login: 'team-a.web-1', command: 'echo after', extraArgs: m.args() });
      assert.equal(late.code, 255);
      assert.equal(late.stdout.length, 0);
      assert.equal(late.stderr, 'podbridge: your credential is no longer accepted by the access policy; log in again\n');
      assert.ok(b.logs.some((l) => l.msg === 'session refused: credential no longer accepted' && /expired/.test(String(l.reason))));
    } finally {
      await m.stop();
    }
  });
});

describe('maximum connection lifetime', () => {
  it('ends the connection and its sessions with a message when the lifetime is reached', async () => {
    const b = await startTestBridge({ maxConnectionTime: 2, sessionWarning: 1 });
    const s = new InteractiveSsh({ port: b.port, key: b.key, login: 'x', command: 'exec sleep 600' });
    try {
      await s.waitFor(/podbridge: this connection reaches its maximum lifetime \(2 s\) in 1 s/, 30_000);
      await s.waitFor(/podbridge: session ended: maximum connection time \(2 s\) reached/, 30_000);
      assert.equal(await s.waitExit(), 255);
    } finally {
      s.kill();
      await b.close();
    }
  });
});

/**
 * Identity and access end to end: a policy file, OpenSSH user certificates made by the real
 * ssh-keygen, and impersonation checked at the fake kube-apiserver, which enforces RBAC rules of
 * its own, so a denied identity is stopped by podbridge AND by Kubernetes, and both audit trails
 * name that user.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AuthzAttributes } from '../fixtures/kube-apiserver/index.ts';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { InteractiveSsh, makeClientKey, runSsh, type ClientKey } from '../helpers/ssh-client.ts';
import { waitUntil } from '../helpers/wait.ts';
import { readAuditEvents } from '../helpers/audit.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-identity-'));
const alice = makeClientKey('alice@laptop');
const carol = makeClientKey('carol@laptop');
const robot = makeClientKey('robot@ci');
const bobKey = makeClientKey('bob@laptop');
const ca = path.join(dir, 'user_ca');
const otherCa = path.join(dir, 'other_ca');
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'corp-user-ca', '-f', ca]);
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rogue-ca', '-f', otherCa]);

/** Issues a certificate for bob's key with the real ssh-keygen; returns a ClientKey that uses it. */
function certify(name: string, args: string[], signer = ca): ClientKey {
  const keyFile = path.join(dir, `bob-${name}`);
  fs.copyFileSync(bobKey.keyFile, keyFile);
  fs.chmodSync(keyFile, 0o600);
  fs.copyFileSync(`${bobKey.keyFile}.pub`, `${keyFile}.pub`);
  execFileSync('ssh-keygen', ['-q', '-s', signer, '-I', `bob-${name}`, ...args, `${keyFile}.pub`]);
  return { dir, keyFile, publicLine: fs.readFileSync(`${keyFile}.pub`, 'utf8').trim() };
}
const withCert = (k: ClientKey) => ['-o', `CertificateFile=${k.keyFile}-cert.pub`];

function policyText(extraRule = ''): string {
  return `version: 1
groups:
  - name: team-a-devs
identities:
  - name: alice
    keys:
      - ${alice.publicLine}
    kubernetes: { user: alice@example.com, groups: [team-a-devs] }
    groups: [team-a-devs]
  - name: carol
    keys:
      - ${carol.publicLine}
    kubernetes: { user: carol@example.com }
  - name: robot
    keys:
      - restrict,command="echo forced:$SSH_ORIGINAL_COMMAND" ${robot.publicLine}
    kubernetes: { user: robot@example.com }
  - name: bob
    principals: [bob]
    kubernetes: { user: bob@example.com, groups: [sre] }
certificateAuthorities:
  - name: corp
    key: ${fs.readFileSync(`${ca}.pub`, 'utf8').trim()}
    revoked:
      serials: [666]
rules:
  - name: team A in its namespace
    groups: [team-a-devs]
    namespaces: [team-a]
    pods: ["web-*"]
    shell: true
    tty: true
    commands: true
  - name: carol is trusted by podbridge everywhere (Kubernetes will still say no)
    identities: [carol]
    namespaces: ["*"]
    pods: ["*"]
    commands: true
  - name: robot runs its one command
    identities: [robot]
    namespaces: [team-a]
    pods: ["*"]
    commands: true
  - name: bob on team-b
    identities: [bob]
    namespaces: [team-b]
    pods: ["*"]
    shell: true
    tty: true
    commands: true
${extraRule}`;
}

/** Kubernetes RBAC of the fake cluster: alice and bob may exec where their team works; carol nowhere. */
function rbac(a: AuthzAttributes): true | string {
  if (a.verb === 'impersonate') return a.user === 'admin' ? true : '';
  if (a.resource !== 'pods') return true;
  if (a.subresource !== 'exec') return true;
  if (a.user === 'alice@example.com' && a.namespace === 'team-a') return true;
  if (a.user === 'robot@example.com' && a.namespace === 'team-a') return true;
  if (a.user === 'bob@example.com' && a.groups.includes('sre') && a.namespace === 'team-b') return true;
  return '';
}

describe('identity and access', () => {
  let cluster: TestCluster;
  let b: TestBridge;
  const policyFile = path.join(dir, 'policy.yaml');
  const auditFile = path.join(dir, 'audit.jsonl');
  // The audit log is written asynchronously (pino, sync: false): a line can land just after the
  // client has exited, so readers wait for the line they expect (issue 16, loaded run 6).
  const auditEvents = (): Array<Record<string, unknown>> =>
    readAuditEvents(auditFile);

  before(async () => {
    fs.writeFileSync(policyFile, policyText());
    cluster = await startTestCluster({ authorize: rbac });
    // Many refusals from 127.0.0.1 are the point here: keep the per-source back-off out of the way.
    b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig, policy: policyFile, auditLog: auditFile, key: alice, backoffThreshold: 1000 });
  });
  after(async () => {
    await b?.close();
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('every API call of a session impersonates the identity, and Kubernetes RBAC lets alice in', async () => {
    const before = cluster.api.requests.length;
    const r = await runSsh({ port: b.port, key: alice, login: 'team-a.web-1', command: 'echo in' });
    assert.equal(r.stdout.toString(), 'in\n', r.stderr);
    const calls = cluster.api.requests.slice(before);
    assert.ok(calls.length >= 2, 'a pod lookup and the exec');
    for (const c of calls) {
      assert.equal(c.headers['impersonate-user'], 'alice@example.com', `${c.method} ${c.path}`);
      assert.equal(c.user, 'alice@example.com', 'the API server acted as alice');
      assert.ok(c.groups.includes('team-a-devs'));
    }
  });

  it('podbridge denies a target no rule allows, naming the identity and what was missing; Kubernetes never sees it', async () => {
    const before = cluster.api.requests.length;
    const r = await runSsh({ port: b.port, key: alice, login: 'team-b.api-0', command: 'echo in' });
    assert.equal(r.code, 255);
    assert.equal(r.stdout.length, 0);
    assert.equal(r.stderr, 'podbridge: identity "alice" may not run commands in team-b/api-0: no rule allows namespace "team-b" (rules for alice: #1 team-a/web-* shell,commands,tty)\n');
    await waitUntil('the denial in the audit trail', () => auditEvents().some((e) => e.event === 'denied' && e.identity === 'alice' && e.target === 'team-b.api-0'));
    assert.equal(cluster.api.requests.length, before, 'no API call for a denied target');
  });

  it('Kubernetes RBAC stops an identity the policy lets through, and the user reads its reason', async () => {
    const r = await runSsh({ port: b.port, key: carol, login: 'team-a.web-1', command: 'echo in' });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /^podbridge: Kubernetes denied access: pods "web-1" is forbidden: User "carol@example.com" cannot (get|create) resource "pods(\/exec)?"/);
    assert.ok(cluster.api.requests.some((c) => c.user === 'carol@example.com' && c.status === 403), 'the API server audit names carol');
  });

  it('a forced command (command= with restrict) replaces the request and gets no pty', async () => {
    const r = await runSsh({ port: b.port, key: robot, login: 'team-a.web-1', command: 'rm -rf /' });
    assert.equal(r.stdout.toString(), 'forced:rm -rf /\n');
    const s = new InteractiveSsh({ port: b.port, key: robot, login: 'team-a.web-1', forceTty: false });
    try {
      await s.waitFor(/forced:\r?\n/);
      assert.match(s.output, /PTY allocation request failed/);
      assert.equal(await s.waitExit(), 0);
    } finally {
      s.kill();
    }
  });

  it('a certificate from the trusted CA logs bob in, by principal, impersonating bob', async () => {
    const cert = certify('valid', ['-n', 'bob', '-V', '-5m:+1h', '-z', '42']);
    const r = await runSsh({ port: b.port, key: cert, login: 'team-b.api-0', command: 'echo "$PODBRIDGE_FAKE_CONTAINER"', extraArgs: withCert(cert) });
    assert.equal(r.stdout.toString(), 'team-b/api-0/api\n', r.stderr);
    const exec = cluster.api.requests.filter((c) => c.path.endsWith('/exec')).at(-1);
    assert.equal(exec?.user, 'bob@example.com');
    const bobAuth = (): Record<string, unknown> | undefined => auditEvents().filter((e) => e.event === 'auth' && e.result === 'success' && e.identity === 'bob').at(-1);
    await waitUntil("bob's login in the audit trail", () => bobAuth() !== undefined);
    const auth = bobAuth();
    assert.equal(auth?.certKeyId, 'bob-valid');
    assert.equal(auth?.certSerial, '42');
  });

  for (const [what, args, signer, why] of [
    ['expired', ['-n', 'bob', '-V', '-2h:-1h'], ca, /expired/],
    ['not yet valid', ['-n', 'bob', '-V', '+1h:+2h'], ca, /not yet valid/],
    ['for another principal', ['-n', 'mallory', '-V', '-5m:+1h'], ca, /no identity has principal "mallory"/],
    ['revoked', ['-n', 'bob', '-V', '-5m:+1h', '-z', '666'], ca, /revoked/],
    ['from the wrong CA', ['-n', 'bob', '-V', '-5m:+1h'], otherCa, /CA/],
    ['with a source-address the client is not at', ['-n', 'bob', '-V', '-5m:+1h', '-O', 'source-address=10.9.9.0/24'], ca, /source-address/],
  ] as const) {
    it(`refuses a certificate ${what} (standard refusal to the client, reason in the log)`, async () => {
      const cert = certify(what.replace(/\W+/g, '-'), [...args], signer);
      const r = await runSsh({ port: b.port, key: cert, login: 'team-b.api-0', command: 'echo in', extraArgs: withCert(cert) });
      assert.equal(r.code, 255);
      assert.equal(r.stdout.length, 0);
      assert.match(r.stderr, /Permission denied \(publickey\)/);
      assert.ok(b.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('auth refused:') && why.test(l.msg)), `log names why: ${JSON.stringify(b.logs.filter((l) => String(l.msg).startsWith('auth refused')).map((l) => l.msg))}`);
    });
  }

  it('a certificate force-command and missing permit-pty are honoured', async () => {
    const cert = certify('forced', ['-n', 'bob', '-V', '-5m:+1h', '-O', 'clear', '-O', 'force-command=echo cert-forced']);
    const r = await runSsh({ port: b.port, key: cert, login: 'team-b.api-0', command: 'echo mine', extraArgs: withCert(cert) });
    assert.equal(r.stdout.toString(), 'cert-forced\n', r.stderr);
  });

  it('a policy reload (SIGHUP) applies to the next session and keeps the running one', async () => {
    const s = new InteractiveSsh({ port: b.port, key: alice, login: 'team-a.web-1' });
    try {
      s.write('echo STILL-$((40+2))\r');
      await s.waitFor(/STILL-42/);
      // alice's group loses its rule.
      fs.writeFileSync(policyFile, policyText().replace('    groups: [team-a-devs]\n    namespaces: [team-a]', '    groups: [team-a-devs]\n    namespaces: [team-z]'));
      const reloaded = b.bridge.reload('test');
      assert.ok(reloaded.ok, 'the new policy loads');
      const denied = await runSsh({ port: b.port, key: alice, login: 'team-a.web-1', command: 'echo in' });
      assert.equal(denied.code, 255);
      assert.match(denied.stderr, /identity "alice" may not/);
      const from = s.output.length;
      s.write('echo ALIVE-$((1+1))\r');
      await s.waitFor(/ALIVE-2/, 15000, from);
      s.write('exit\r');
      assert.equal(await s.waitExit(), 0);
      // A broken edit keeps the last good policy.
      fs.writeFileSync(policyFile, 'version: 1\nrules: [oops\n');
      const bad = b.bridge.reload('test');
      assert.equal(bad.ok, false);
      assert.match(bad.ok ? '' : bad.error.message, /policy\.yaml:\d+/);
    } finally {
      s.kill();
      fs.writeFileSync(policyFile, policyText());
      b.bridge.reload('test');
    }
  });
});

describe('policy errors at start-up', () => {
  it('a malformed policy stops the bridge with file, line and field', async () => {
    const bad = path.join(os.tmpdir(), `pb-bad-policy-${process.pid}.yaml`);
    fs.writeFileSync(bad, 'version: 1\nidentities:\n  - name: x\n    keys: [not-a-key]\nrules: []\n');
    try {
      await assert.rejects(startTestBridge({ policy: bad }), /pb-bad-policy-\d+\.yaml:4: identities\[0\]\.keys\[0\]/);
    } finally {
      fs.rmSync(bad, { force: true });
    }
  });
});

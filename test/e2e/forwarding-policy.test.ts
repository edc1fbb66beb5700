// test-budget: file 180 s, test 60 s
/**
 * Who may forward, through the real OpenSSH client on the local backend (the policy knows no
 * backend): a rule's portForwarding and ports, authorized_keys no-port-forwarding and
 * permitopen= as sshd reads them. Each refusal is a channel-open failure the user can read.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { makeClientKey, runSsh, type ClientKey } from '../helpers/ssh-client.ts';

describe('forwarding policy', () => {
  let bridge: TestBridge;
  let server: net.Server;
  let open: number;
  let dir: string;
  const keys: Record<string, ClientKey> = {};

  before(async () => {
    server = net.createServer((s) => s.end('pong\n'));
    open = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
    for (const n of ['ports', 'noforward', 'permitopen', 'nocap']) keys[n] = makeClientKey(`${n}@test`);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-fwdpol-'));
    const policy = path.join(dir, 'policy.yaml');
    const line = (k: ClientKey) => JSON.stringify(k.publicLine);
    fs.writeFileSync(
      policy,
      [
        'version: 1',
        'identities:',
        `  - { name: ports, keys: [${line(keys.ports!)}] }`,
        `  - { name: noforward, keys: [${JSON.stringify(`no-port-forwarding ${keys.noforward!.publicLine}`)}] }`,
        `  - { name: permitopen, keys: [${JSON.stringify(`permitopen="localhost:${open}",permitopen="localhost:1" ${keys.permitopen!.publicLine}`)}] }`,
        `  - { name: nocap, keys: [${line(keys.nocap!)}] }`,
        'rules:',
        `  - { identities: [ports], namespaces: ["*"], pods: ["*"], portForwarding: true, ports: [${open}, "1-2"] }`,
        '  - { identities: [noforward, permitopen], namespaces: ["*"], pods: ["*"], portForwarding: true }',
        '  - { identities: [nocap], namespaces: ["*"], pods: ["*"], commands: true }',
        '',
      ].join('\n'),
    );
    bridge = await startTestBridge({ backend: 'local', policy, key: keys.ports });
  });
  after(async () => {
    await bridge?.close();
    server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const forward = (who: string, dest: string) =>
    runSsh({ port: bridge.port, key: keys[who]!, login: 'default.local', extraArgs: ['-o', 'LogLevel=INFO', '-W', dest], stdin: 'ignore' });

  it('a rule with ports allows a listed port', async () => {
    const r = await forward('ports', `localhost:${open}`);
    assert.equal(r.stdout.toString(), 'pong\n', r.stderr);
  });

  it('a rule with ports refuses another port and lists the allowed ones', async () => {
    const r = await forward('ports', 'localhost:5432');
    assert.equal(r.code, 255);
    assert.match(r.stderr, new RegExp(`administratively prohibited: identity "ports" may not forward ports to default/local: no rule that reaches default/local allows port 5432 \\(ports allowed: ${open}, 1-2\\)`));
  });

  it('no-port-forwarding on the key refuses, whatever the rules say', async () => {
    const r = await forward('noforward', `localhost:${open}`);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /administratively prohibited: identity "noforward" may not forward ports to default\/local: its key does not permit port forwarding \(no-port-forwarding or restrict\)/);
  });

  it('permitopen= allows exactly what it lists, as a string (localhost is not 127.0.0.1)', async () => {
    const ok = await forward('permitopen', `localhost:${open}`);
    assert.equal(ok.stdout.toString(), 'pong\n', ok.stderr);
    const other = await forward('permitopen', `127.0.0.1:${open}`);
    assert.equal(other.code, 255);
    assert.match(other.stderr, new RegExp(`administratively prohibited: the key's permitopen="localhost:${open}, localhost:1" does not allow "127.0.0.1":${open}`));
  });

  it('without portForwarding in any rule, forwarding is refused naming the capability', async () => {
    const r = await forward('nocap', `localhost:${open}`);
    assert.equal(r.code, 255);
    assert.match(r.stderr, /administratively prohibited: identity "nocap" may not forward ports to default\/local: no rule that reaches default\/local grants portForwarding/);
  });
});

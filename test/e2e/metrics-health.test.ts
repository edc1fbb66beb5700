/**
 * The diagnostics port as an operator's Prometheus and kubelet see it: counters read over HTTP
 * after real OpenSSH sessions, and readiness as the bridge's parts come and go.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { httpGet, scrape, value } from '../helpers/diag.ts';
import { InteractiveSsh, makeClientKey, runSsh } from '../helpers/ssh-client.ts';
import { waitUntil } from '../helpers/wait.ts';

describe('metrics and health (local backend)', () => {
  let b: TestBridge;
  let diag: number;
  before(async () => {
    b = await startTestBridge({ diagListen: '127.0.0.1:0' });
    diag = b.bridge.diag!.address.port;
  });
  after(() => b.close());

  it('answers /healthz and /readyz with 200 and /metrics in Prometheus text format', async () => {
    assert.deepEqual(await httpGet(diag, '/healthz').then((r) => [r.status, r.body]), [200, 'ok\n']);
    assert.deepEqual(await httpGet(diag, '/readyz').then((r) => [r.status, r.body]), [200, 'ok\n']);
    const m = await httpGet(diag, '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.type, /^text\/plain; version=0\.0\.4/);
    assert.match(m.body, /^# HELP podbridge_sessions_total /m);
    assert.match(m.body, /^# TYPE podbridge_session_setup_seconds histogram$/m);
    assert.match(m.body, /^process_resident_memory_bytes \d+/m);
    assert.equal((await httpGet(diag, '/nope')).status, 404);
  });

  it('counts connections, handshakes, auth by method and result, sessions by outcome, bytes and set-up time', async () => {
    const before = await scrape(diag);
    const ok = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'wc -c', stdin: Buffer.alloc(5000, 'a') });
    assert.equal(ok.code, 0);
    assert.equal(ok.stdout.toString().trim(), '5000');
    const failed = await runSsh({ port: b.port, key: b.key, login: 'x', command: 'exit 3' });
    assert.equal(failed.code, 3);
    const stranger = await runSsh({ port: b.port, key: makeClientKey('stranger'), login: 'x', command: 'true' });
    assert.equal(stranger.code, 255);
    const after = await scrape(diag);
    const moved = (name: string, labels: Record<string, string> = {}) => value(after, name, labels) - value(before, name, labels);

    assert.equal(moved('podbridge_connections_total', { result: 'accepted' }), 3);
    assert.equal(moved('podbridge_ssh_handshakes_total', { result: 'ok' }), 3);
    assert.equal(moved('podbridge_auth_attempts_total', { method: 'publickey', result: 'success' }), 2);
    assert.ok(moved('podbridge_auth_attempts_total', { method: 'publickey', result: 'failure' }) >= 1, 'the stranger key was counted as a failure');
    assert.equal(moved('podbridge_sessions_total', { backend: 'local', kind: 'exec', outcome: 'exit-zero' }), 1);
    assert.equal(moved('podbridge_sessions_total', { backend: 'local', kind: 'exec', outcome: 'exit-nonzero' }), 1);
    assert.equal(moved('podbridge_session_setup_seconds_count', { backend: 'local' }), 2);
    assert.ok(moved('podbridge_session_setup_seconds_sum', { backend: 'local' }) > 0);
    assert.ok(moved('podbridge_session_bytes_total', { direction: 'in' }) >= 5000, 'the 5000 bytes of stdin were counted');
    assert.ok(moved('podbridge_session_bytes_total', { direction: 'out' }) >= 5, '"5000\\n" was counted');
    assert.equal(value(after, 'podbridge_sessions_open', { door: 'ssh' }), 0);
  });

  it('shows a running session in podbridge_sessions_open and counts it when it ends', async () => {
    // A command in a terminal, not a login shell: a login shell can take a minute to start on a loaded machine.
    const term = new InteractiveSsh({ port: b.port, key: b.key, login: 'x', command: 'read line; exit 0' });
    try {
      await waitUntil('one open session', async () => value(await scrape(diag), 'podbridge_sessions_open', { door: 'ssh' }) === 1);
      const start = value(await scrape(diag), 'podbridge_sessions_total', { backend: 'local', kind: 'exec', outcome: 'exit-zero' });
      term.write('done\r');
      assert.equal(await term.waitExit(), 0);
      await waitUntil('the session counted as exit-zero', async () => value(await scrape(diag), 'podbridge_sessions_total', { backend: 'local', kind: 'exec', outcome: 'exit-zero' }) === start + 1);
      assert.equal(value(await scrape(diag), 'podbridge_sessions_open', { door: 'ssh' }), 0);
    } finally {
      term.kill();
    }
  });

  it('is not ready while draining: /readyz says why, /healthz stays 200, podbridge_draining is 1', async () => {
    const d = await startTestBridge({ diagListen: '127.0.0.1:0', shutdownGrace: 30 });
    const port = d.bridge.diag!.address.port;
    const long = new InteractiveSsh({ port: d.port, key: d.key, login: 'x', command: 'sleep 60' });
    await waitUntil('the session to run', async () => value(await scrape(port), 'podbridge_sessions_open', { door: 'ssh' }) === 1);
    const stopping = d.bridge.shutdown(30_000);
    await waitUntil('/readyz to turn 503', async () => (await httpGet(port, '/readyz')).status === 503);
    assert.equal((await httpGet(port, '/readyz')).body, 'not ready: listener: draining: shutting down, accepting no new connections\n');
    assert.equal((await httpGet(port, '/healthz')).status, 200);
    assert.equal(value(await scrape(port), 'podbridge_draining'), 1);
    long.kill(); // the user leaves: the drain ends early
    await stopping;
    await d.close();
  });
});

describe('metrics and health (Kubernetes backend)', () => {
  let cluster: TestCluster;
  let b: TestBridge;
  let diag: number;
  before(async () => {
    cluster = await startTestCluster();
    b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig, diagListen: '127.0.0.1:0' });
    diag = b.bridge.diag!.address.port;
  });
  after(async () => {
    await b.close();
    await cluster.stop();
  });

  it('counts backend errors by code and sessions by outcome', async () => {
    const before = await scrape(diag);
    const ok = await runSsh({ port: b.port, key: b.key, login: 'team-a.web-1', command: 'echo in-pod' });
    assert.equal(ok.stdout.toString(), 'in-pod\n');
    const missing = await runSsh({ port: b.port, key: b.key, login: 'team-a.no-such-pod', command: 'true' });
    assert.equal(missing.code, 255);
    assert.match(missing.stderr, /no-such-pod/);
    const after = await scrape(diag);
    const moved = (name: string, labels: Record<string, string>) => value(after, name, labels) - value(before, name, labels);
    assert.equal(moved('podbridge_sessions_total', { backend: 'kubernetes', kind: 'exec', outcome: 'exit-zero' }), 1);
    assert.equal(moved('podbridge_sessions_total', { backend: 'kubernetes', kind: 'exec', outcome: 'error' }), 1);
    assert.equal(moved('podbridge_backend_errors_total', { backend: 'kubernetes', code: 'pod-not-found' }), 1);
    assert.equal(moved('podbridge_session_setup_seconds_count', { backend: 'kubernetes' }), 1);
  });

  it('is ready while the API server answers, and says "backend" when it does not', async () => {
    assert.equal((await httpGet(diag, '/readyz')).status, 200);
    await cluster.api.stop();
    const r = await httpGet(diag, '/readyz');
    assert.equal(r.status, 503);
    assert.match(r.body, /^not ready: backend: .*\n$/);
    assert.equal((await httpGet(diag, '/healthz')).status, 200);
  });
});

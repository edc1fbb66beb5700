// Tests of the fake kube-apiserver fixture, driven with plain https requests and a raw `ws` client so
// that nothing of podbridge's own client code is involved.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import {
  FakeKubeApiServer,
  V1_PROTOCOL,
  V3_PROTOCOL,
  V4_BASE64_PROTOCOL,
  V4_PROTOCOL,
  V5_PROTOCOL,
  type FakeApiServerOptions,
} from '../fixtures/kube-apiserver/index.ts';
import { ContainerRuntime, type ContainerProcess } from '../fixtures/kube-apiserver/processes.ts';
import { compiled, REPO } from '../helpers/paths.ts';

const TOKEN = 'test-token';

function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startServer(t: TestContext, opts: FakeApiServerOptions = {}): Promise<FakeKubeApiServer> {
  const s = await FakeKubeApiServer.start({ token: TOKEN, ...opts });
  t.after(() => s.stop());
  return s;
}

interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function request(s: FakeKubeApiServer, path: string, opts: { method?: string; token?: string | null; headers?: Record<string, string | string[]> } = {}): Promise<HttpResult> {
  const headers: Record<string, string | string[]> = { ...(opts.headers ?? {}) };
  const token = opts.token === undefined ? TOKEN : opts.token;
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  return within(10_000, new Promise<HttpResult>((resolve, reject) => {
    const req = https.request(`${s.url}${path}`, { method: opts.method ?? 'GET', ca: s.caPem, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  }), `${opts.method ?? 'GET'} ${path}`);
}

interface Frame {
  ch: number;
  data: Buffer;
}

interface ExecConn {
  ws: WebSocket;
  frames: Frame[];
  /** Resolves with the negotiated protocol, or rejects with the refused upgrade's status and body. */
  opened: Promise<string>;
  closed: Promise<{ code: number; reason: string }>;
  refused: Promise<HttpResult>;
  output(ch: number): string;
  statusText(): string;
  waitFor(pred: () => boolean, what: string, ms?: number): Promise<void>;
}

function execQuery(command: string[], flags: Record<string, string | boolean>): string {
  const q = new URLSearchParams();
  for (const c of command) q.append('command', c);
  for (const [k, v] of Object.entries(flags)) q.append(k, String(v));
  return q.toString();
}

function openExec(s: FakeKubeApiServer, pod: string, query: string, protocols: string[], opts: { token?: string; base64?: boolean; headers?: Record<string, string> } = {}): ExecConn {
  const url = `${s.url.replace('https://', 'wss://')}/api/v1/namespaces/demo/pods/${pod}/exec?${query}`;
  const ws = new WebSocket(url, protocols, {
    ca: s.caPem,
    headers: { Authorization: `Bearer ${opts.token ?? TOKEN}`, ...(opts.headers ?? {}) },
  });
  const frames: Frame[] = [];
  let onRefused: (r: HttpResult) => void = () => undefined;
  const refused = new Promise<HttpResult>((r) => { onRefused = r; });
  const opened = new Promise<string>((resolve, reject) => {
    ws.once('open', () => resolve(ws.protocol));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const r = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') };
        onRefused(r);
        reject(new Error(`upgrade refused: ${r.status} ${r.body}`));
        ws.terminate();
      });
    });
    ws.once('error', reject);
  });
  opened.catch(() => undefined);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (opts.base64) {
      assert.equal(isBinary, false, 'base64 protocols use text frames');
      const text = data.toString('latin1');
      frames.push({ ch: text.charCodeAt(0) - 48, data: Buffer.from(text.slice(1), 'base64') });
    } else {
      assert.equal(isBinary, true, 'channel protocols use binary frames');
      frames.push({ ch: data[0] ?? -1, data: data.subarray(1) });
    }
  });
  const conn: ExecConn = {
    ws,
    frames,
    opened,
    closed,
    refused,
    output: (ch) => Buffer.concat(frames.filter((f) => f.ch === ch).map((f) => f.data)).toString('utf8'),
    statusText: () => conn.output(3),
    waitFor: async (pred, what, ms = 10_000) => {
      const deadline = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(20);
      }
    },
  };
  return conn;
}

function send(ws: WebSocket, ch: number, data: string | Buffer): void {
  ws.send(Buffer.concat([Buffer.from([ch]), Buffer.isBuffer(data) ? data : Buffer.from(data)]));
}

function demoPod(s: FakeKubeApiServer, name = 'shell', extra: Partial<Parameters<FakeKubeApiServer['addPod']>[0]> = {}): void {
  s.addPod({ namespace: 'demo', name, containers: [{ name: 'main' }], ...extra });
}

const SH_OUT_ERR_EXIT3 = ['sh', '-c', 'echo out; echo err >&2; exit 3'];

/** Running or blocked, not merely an unreaped zombie (PID 1 of a container may never reap). */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A WebSocket upgrade sent by hand, for what the ws client cannot do (POST). */
function rawUpgrade(s: FakeKubeApiServer, path: string, method: string, headers: Record<string, string>): Promise<HttpResult> {
  return within(10_000, new Promise<HttpResult>((resolve, reject) => {
    const req = https.request(`${s.url}${path}`, {
      method,
      ca: s.caPem,
      headers: {
        Authorization: `Bearer ${TOKEN}`,
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  }), `${method} upgrade ${path}`);
}

// ---------------------------------------------------------------------------------------------
// REST

test('GET pod returns the real object shape', async (t) => {
  const s = await startServer(t);
  s.addPod({
    namespace: 'team-a',
    name: 'web-7d9f',
    labels: { app: 'web' },
    annotations: { 'kubectl.kubernetes.io/default-container': 'app' },
    containers: [{ name: 'app', image: 'nginx:1.27' }, { name: 'sidecar' }],
    ownerReferences: [{ kind: 'ReplicaSet', name: 'web-7d9f' }],
    restartCount: 2,
  });
  const r = await request(s, '/api/v1/namespaces/team-a/pods/web-7d9f');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'application/json');
  assert.ok(r.body.endsWith('}\n'), 'json.Encoder ends documents with a newline');
  const pod = JSON.parse(r.body);
  assert.equal(pod.kind, 'Pod');
  assert.equal(pod.apiVersion, 'v1');
  assert.deepEqual(Object.keys(pod), ['kind', 'apiVersion', 'metadata', 'spec', 'status']);
  assert.equal(pod.metadata.name, 'web-7d9f');
  assert.equal(pod.metadata.namespace, 'team-a');
  assert.match(pod.metadata.uid, /^[0-9a-f-]{36}$/);
  assert.match(pod.metadata.resourceVersion, /^\d+$/);
  assert.match(pod.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual(pod.metadata.labels, { app: 'web' });
  assert.equal(pod.metadata.annotations['kubectl.kubernetes.io/default-container'], 'app');
  assert.equal(pod.metadata.ownerReferences[0].apiVersion, 'apps/v1');
  assert.equal(pod.metadata.ownerReferences[0].controller, true);
  assert.deepEqual(pod.spec.containers.map((c: { name: string }) => c.name), ['app', 'sidecar']);
  assert.equal(pod.spec.containers[0].image, 'nginx:1.27');
  assert.equal(pod.spec.nodeName, 'node-1');
  assert.equal(pod.status.phase, 'Running');
  const ready = pod.status.conditions.find((c: { type: string }) => c.type === 'Ready');
  assert.equal(ready.status, 'True');
  assert.equal(pod.status.containerStatuses.length, 2);
  const cs = pod.status.containerStatuses[0];
  assert.ok(cs.state.running.startedAt);
  assert.equal(cs.ready, true);
  assert.equal(cs.restartCount, 2);
  assert.match(cs.containerID, /^containerd:\/\/[0-9a-f]{64}$/);
  assert.equal(cs.image, 'docker.io/library/nginx:1.27');
  assert.match(pod.status.hostIP, /^\d+\.\d+\.\d+\.\d+$/);
  assert.match(pod.status.podIP, /^10\.244\./);

  s.updatePod('team-a', 'web-7d9f', { ready: false, containers: [{ name: 'app', state: { waiting: 'CrashLoopBackOff' } }, { name: 'sidecar' }] });
  const r2 = JSON.parse((await request(s, '/api/v1/namespaces/team-a/pods/web-7d9f')).body);
  assert.notEqual(r2.metadata.resourceVersion, pod.metadata.resourceVersion);
  const notReady = r2.status.conditions.find((c: { type: string }) => c.type === 'Ready');
  assert.equal(notReady.status, 'False');
  assert.equal(notReady.reason, 'ContainersNotReady');
  assert.equal(notReady.message, 'containers with unready status: [app sidecar]');
  assert.equal(r2.status.containerStatuses[0].state.waiting.reason, 'CrashLoopBackOff');
});

test('pod list honours label selectors and lists items without kind', async (t) => {
  const s = await startServer(t);
  s.addPod({ namespace: 'team-a', name: 'web-1', labels: { app: 'web', tier: 'fe' }, containers: [{ name: 'c' }] });
  s.addPod({ namespace: 'team-a', name: 'web-2', labels: { app: 'web', tier: 'be' }, containers: [{ name: 'c' }] });
  s.addPod({ namespace: 'team-a', name: 'db-1', labels: { app: 'db' }, containers: [{ name: 'c' }] });
  s.addPod({ namespace: 'team-b', name: 'web-3', labels: { app: 'web', tier: 'fe' }, containers: [{ name: 'c' }] });
  const names = async (q: string): Promise<string[]> => {
    const r = await request(s, `/api/v1/namespaces/team-a/pods?${q}`);
    assert.equal(r.status, 200, r.body);
    const list = JSON.parse(r.body);
    assert.equal(list.kind, 'PodList');
    assert.equal(list.apiVersion, 'v1');
    assert.match(list.metadata.resourceVersion, /^\d+$/);
    for (const item of list.items) assert.equal(item.kind, undefined);
    return list.items.map((p: { metadata: { name: string } }) => p.metadata.name);
  };
  assert.deepEqual(await names(`labelSelector=${encodeURIComponent('app=web,tier=fe')}`), ['web-1']);
  assert.deepEqual(await names(`labelSelector=${encodeURIComponent('app=web')}`), ['web-1', 'web-2']);
  assert.deepEqual(await names(`labelSelector=${encodeURIComponent('app in (web,db),tier!=be')}`), ['db-1', 'web-1']);
  assert.deepEqual(await names(''), ['db-1', 'web-1', 'web-2']);
  assert.deepEqual(await names(`fieldSelector=${encodeURIComponent('metadata.name=web-2')}`), ['web-2']);
  const bad = await request(s, `/api/v1/namespaces/team-a/pods?labelSelector=${encodeURIComponent('app=(')}`);
  assert.equal(bad.status, 400);
  assert.equal(JSON.parse(bad.body).reason, 'BadRequest');
});

test('namespaces and workloads, and their NotFound bodies', async (t) => {
  const s = await startServer(t);
  s.addNamespace('team-a');
  s.addPod({ namespace: 'team-a', name: 'web-1', labels: { app: 'web' }, containers: [{ name: 'c' }] });
  s.addWorkload({ kind: 'Deployment', namespace: 'team-a', name: 'web', matchLabels: { app: 'web' } });
  s.addWorkload({ kind: 'StatefulSet', namespace: 'team-a', name: 'db', matchLabels: { app: 'db' } });
  s.addWorkload({ kind: 'DaemonSet', namespace: 'team-a', name: 'agent', matchLabels: { app: 'agent' } });
  s.addWorkload({ kind: 'ReplicaSet', namespace: 'team-a', name: 'web-7d9f', matchLabels: { app: 'web' } });
  s.addWorkload({ kind: 'Job', namespace: 'team-a', name: 'migrate', matchLabels: { 'batch.kubernetes.io/controller-uid': 'abc' } });

  const ns = await request(s, '/api/v1/namespaces/team-a');
  assert.equal(ns.status, 200);
  const nsObj = JSON.parse(ns.body);
  assert.equal(nsObj.kind, 'Namespace');
  assert.equal(nsObj.status.phase, 'Active');
  assert.equal(nsObj.metadata.labels['kubernetes.io/metadata.name'], 'team-a');
  const missingNs = await request(s, '/api/v1/namespaces/nope');
  assert.equal(missingNs.status, 404);
  assert.equal(missingNs.body, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces \\"nope\\" not found","reason":"NotFound","details":{"name":"nope","kind":"namespaces"},"code":404}\n');

  for (const [path, kind, apiVersion] of [
    ['/apis/apps/v1/namespaces/team-a/deployments/web', 'Deployment', 'apps/v1'],
    ['/apis/apps/v1/namespaces/team-a/statefulsets/db', 'StatefulSet', 'apps/v1'],
    ['/apis/apps/v1/namespaces/team-a/daemonsets/agent', 'DaemonSet', 'apps/v1'],
    ['/apis/apps/v1/namespaces/team-a/replicasets/web-7d9f', 'ReplicaSet', 'apps/v1'],
    ['/apis/batch/v1/namespaces/team-a/jobs/migrate', 'Job', 'batch/v1'],
  ] as const) {
    const r = await request(s, path);
    assert.equal(r.status, 200, `${path}: ${r.body}`);
    const obj = JSON.parse(r.body);
    assert.equal(obj.kind, kind);
    assert.equal(obj.apiVersion, apiVersion);
    assert.ok(obj.spec.selector.matchLabels, `${kind} has spec.selector.matchLabels`);
    assert.deepEqual(obj.spec.template.metadata.labels, obj.spec.selector.matchLabels);
  }
  const dep = JSON.parse((await request(s, '/apis/apps/v1/namespaces/team-a/deployments/web')).body);
  assert.deepEqual(dep.spec.selector.matchLabels, { app: 'web' });
  assert.equal(dep.spec.replicas, 1);
  const job = JSON.parse((await request(s, '/apis/batch/v1/namespaces/team-a/jobs/migrate')).body);
  assert.deepEqual(job.spec.selector.matchLabels, { 'batch.kubernetes.io/controller-uid': 'abc' });

  const missing = await request(s, '/apis/apps/v1/namespaces/team-a/deployments/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.body, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \\"nope\\" not found","reason":"NotFound","details":{"name":"nope","group":"apps","kind":"deployments"},"code":404}\n');
  const missingPod = await request(s, '/api/v1/namespaces/team-a/pods/x');
  assert.equal(missingPod.body, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"x\\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}\n');
});

test('401 for a missing or wrong token, with the real Status body', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const expected = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}\n';
  for (const token of [null, 'wrong']) {
    const r = await request(s, '/api/v1/namespaces/demo/pods/shell', { token });
    assert.equal(r.status, 401);
    assert.equal(r.body, expected);
  }
  const c = openExec(s, 'shell', execQuery(['true'], { stdout: true }), [V5_PROTOCOL], { token: 'wrong' });
  await assert.rejects(within(5000, c.opened, 'refusal'));
  const refused = await within(5000, c.refused, 'refused body');
  assert.equal(refused.status, 401);
  assert.equal(refused.body, expected);
  assert.equal(s.requests.at(-1)?.status, 401);
  assert.equal(s.requests.at(-1)?.user, '');
});

test('403 carries the RBAC message; impersonation changes who is authorized', async (t) => {
  const seen: string[] = [];
  const s = await startServer(t, {
    authorize: (a) => {
      seen.push(`${a.user}|${a.groups.join(',')}|${a.verb}|${a.resource}|${a.subresource}|${a.namespace}|${a.name}`);
      if (a.verb === 'impersonate') return a.name === 'mallory' ? '' : true;
      if (a.user === 'alice' && a.resource === 'pods' && a.subresource === '') return '';
      return true;
    },
  });
  s.addPod({ namespace: 'team-a', name: 'web', containers: [{ name: 'c' }] });

  const asAdmin = await request(s, '/api/v1/namespaces/team-a/pods/web');
  assert.equal(asAdmin.status, 200);
  assert.equal(s.requests.at(-1)?.user, 'admin');

  const denied = await request(s, '/api/v1/namespaces/team-a/pods/web', { headers: { 'Impersonate-User': 'alice', 'Impersonate-Group': ['devs', 'oncall'] } });
  assert.equal(denied.status, 403);
  assert.equal(denied.body, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"web\\" is forbidden: User \\"alice\\" cannot get resource \\"pods\\" in API group \\"\\" in the namespace \\"team-a\\"","reason":"Forbidden","details":{"name":"web","kind":"pods"},"code":403}\n');
  const rec = s.requests.at(-1);
  assert.equal(rec?.user, 'alice');
  assert.deepEqual(rec?.groups, ['devs', 'oncall', 'system:authenticated']);
  assert.ok(seen.includes('admin|system:masters,system:authenticated|impersonate|users|||alice'));
  assert.ok(seen.includes('admin|system:masters,system:authenticated|impersonate|groups|||devs'));
  assert.ok(seen.includes('alice|devs,oncall,system:authenticated|get|pods||team-a|web'));

  const list = await request(s, '/api/v1/namespaces/team-a/pods', { headers: { 'Impersonate-User': 'alice' } });
  assert.equal(list.status, 403);
  assert.equal(JSON.parse(list.body).message, 'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "team-a"');

  const noImp = await request(s, '/api/v1/namespaces/team-a/pods/web', { headers: { 'Impersonate-User': 'mallory' } });
  assert.equal(noImp.status, 403);
  assert.equal(noImp.body, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"users \\"mallory\\" is forbidden: User \\"admin\\" cannot impersonate resource \\"users\\" in API group \\"\\" at the cluster scope","reason":"Forbidden","details":{"name":"mallory","kind":"users"},"code":403}\n');
  assert.equal(s.requests.at(-1)?.user, 'admin');

  const sa = await request(s, '/api/v1/namespaces/team-a/pods/web', { headers: { 'Impersonate-User': 'system:serviceaccount:team-a:bot' } });
  assert.equal(sa.status, 200);
  assert.deepEqual(s.requests.at(-1)?.groups, ['system:serviceaccounts', 'system:serviceaccounts:team-a', 'system:authenticated']);

  const groupOnly = await request(s, '/api/v1/namespaces/team-a/pods/web', { headers: { 'Impersonate-Group': 'devs' } });
  assert.equal(groupOnly.status, 500);
  assert.match(groupOnly.body, /without impersonating a user/);
});

// ---------------------------------------------------------------------------------------------
// Exec refusals

test('exec refusals before the upgrade carry the real Status', async (t) => {
  const s = await startServer(t, {
    authorize: (a) => (a.user === 'bob' && a.subresource === 'exec' && a.verb === 'create' ? '' : true),
  });
  s.addPod({ namespace: 'demo', name: 'multi', containers: [{ name: 'a' }, { name: 'b' }] });
  s.addPod({ namespace: 'demo', name: 'unscheduled', nodeName: null, phase: 'Pending', containers: [{ name: 'main' }] });
  demoPod(s);
  const refusal = async (pod: string, q: string, opts: { headers?: Record<string, string> } = {}): Promise<HttpResult> => {
    const c = openExec(s, pod, q, [V5_PROTOCOL, V4_PROTOCOL], opts);
    await assert.rejects(within(5000, c.opened, 'refusal'));
    return within(5000, c.refused, 'refused body');
  };
  const q = execQuery(['true'], { stdout: true });

  const missing = await refusal('nope', q);
  assert.equal(missing.status, 404);
  assert.equal(missing.body, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"nope\\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404}\n');

  const badContainer = await refusal('shell', execQuery(['true'], { stdout: true, container: 'x' }));
  assert.equal(badContainer.status, 400);
  assert.equal(badContainer.body, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"container x is not valid for pod shell","reason":"BadRequest","code":400}\n');

  const choose = await refusal('multi', q);
  assert.equal(choose.status, 400);
  assert.equal(JSON.parse(choose.body).message, 'a container name must be specified for pod multi, choose one of: [a b]');

  const noHost = await refusal('unscheduled', q);
  assert.equal(noHost.status, 400);
  assert.equal(JSON.parse(noHost.body).message, 'pod unscheduled does not have a host assigned');

  // GET upgrades are checked for `get` by the filter and for `create` by ExecREST.Connect.
  const forbiddenGet = await refusal('shell', q, { headers: { 'Impersonate-User': 'bob' } });
  assert.equal(forbiddenGet.status, 403);
  assert.equal(forbiddenGet.body, '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \\"shell\\" is forbidden: ","reason":"Forbidden","details":{"name":"shell","kind":"pods"},"code":403}\n');
  const forbiddenPost = await rawUpgrade(s, `/api/v1/namespaces/demo/pods/shell/exec?${q}`, 'POST', { 'Impersonate-User': 'bob', 'Sec-WebSocket-Protocol': V5_PROTOCOL });
  assert.equal(forbiddenPost.status, 403);
  assert.equal(JSON.parse(forbiddenPost.body).message, 'pods "shell" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "demo"');
  // Authorized, but golang.org/x/net/websocket only upgrades GET requests.
  for (const protocol of [V5_PROTOCOL, V4_PROTOCOL]) {
    const post = await rawUpgrade(s, `/api/v1/namespaces/demo/pods/shell/exec?${q}`, 'POST', { 'Sec-WebSocket-Protocol': protocol });
    assert.equal(post.status, 405);
    assert.equal(post.body, 'bad method');
  }
  const get = await rawUpgrade(s, `/api/v1/namespaces/demo/pods/shell/exec?${q}`, 'GET', { 'Sec-WebSocket-Protocol': V5_PROTOCOL });
  assert.equal(get.status, 101);
  assert.equal(get.headers['sec-websocket-protocol'], V5_PROTOCOL);

  const plain = await request(s, `/api/v1/namespaces/demo/pods/shell/exec?${q}`, { method: 'POST' });
  assert.equal(plain.status, 400);
  assert.equal(JSON.parse(plain.body).message, 'Upgrade request required');
  assert.equal(s.execs.length, 1, 'only the GET upgrade started a process');
});

test('kubelet-side refusals: plain text before a v4 upgrade, a channel-3 Status after a v5 one', async (t) => {
  const s = await startServer(t);
  demoPod(s, 'done', { phase: 'Succeeded' });
  demoPod(s, 'crashing', { containers: [{ name: 'main', state: { waiting: 'CrashLoopBackOff' } }] });
  demoPod(s);
  for (const pod of ['done', 'crashing']) {
    const v4 = openExec(s, pod, execQuery(['sh'], { stdout: true }), [V4_PROTOCOL]);
    await assert.rejects(within(5000, v4.opened, 'v4 refusal'));
    const r = await within(5000, v4.refused, 'v4 refusal body');
    assert.equal(r.status, 500);
    assert.equal(r.body, 'container not found ("main")');
    assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');

    const v5 = openExec(s, pod, execQuery(['sh'], { stdout: true }), [V5_PROTOCOL]);
    assert.equal(await within(5000, v5.opened, 'v5 open'), V5_PROTOCOL);
    const closed = await within(5000, v5.closed, 'v5 close');
    assert.equal(closed.code, 1000);
    assert.deepEqual(v5.frames[0], { ch: 1, data: Buffer.alloc(0) });
    assert.equal(v5.statusText(), '{"metadata":{},"status":"Failure","message":"Internal error occurred: unable to upgrade connection: container not found (\\"main\\")","reason":"InternalError","details":{"causes":[{"message":"unable to upgrade connection: container not found (\\"main\\")"}]},"code":500}');
  }

  const none = openExec(s, 'shell', execQuery(['true'], { stdout: false, stderr: false }), [V4_PROTOCOL]);
  await assert.rejects(within(5000, none.opened, 'refusal'));
  const r = await within(5000, none.refused, 'refusal body');
  assert.equal(r.status, 400);
  assert.equal(r.body, 'you must specify at least 1 of stdin, stdout, stderr');

  const noneV5 = openExec(s, 'shell', execQuery(['true'], {}), [V5_PROTOCOL]);
  await within(5000, noneV5.closed, 'close');
  assert.deepEqual(noneV5.frames[0], { ch: 3, data: Buffer.alloc(0) }, 'readiness goes to the error channel when nothing else is written');
  assert.equal(JSON.parse(noneV5.statusText()).message, 'Internal error occurred: unable to upgrade connection: you must specify at least 1 of stdin, stdout, stderr');
});

test('subprotocol negotiation follows the client order among what the server supports', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const q = execQuery(['true'], { stdout: true });
  const proto = async (offer: string[]): Promise<string> => {
    const c = openExec(s, 'shell', q, offer);
    const p = await within(5000, c.opened, `open with ${offer.join(',')}`);
    await within(5000, c.closed, 'close');
    return p;
  };
  assert.equal(await proto([V4_PROTOCOL]), V4_PROTOCOL);
  assert.equal(await proto([V4_PROTOCOL, V5_PROTOCOL]), V5_PROTOCOL, 'any v5 in the list goes to the translator');
  assert.equal(await proto([V1_PROTOCOL, V4_PROTOCOL]), V1_PROTOCOL);

  // v3 is SPDY-only in the real WebSocket handler: the handshake fails with a bare 403.
  const v3 = openExec(s, 'shell', q, [V3_PROTOCOL]);
  await assert.rejects(within(5000, v3.opened, 'v3 refusal'));
  const refused = await within(5000, v3.refused, 'v3 body');
  assert.equal(refused.status, 403);
  assert.equal(refused.body, '');

  s.setExecProtocols([V4_PROTOCOL]);
  assert.equal(await proto([V5_PROTOCOL, V4_PROTOCOL]), V4_PROTOCOL, 'a pre-1.30 server answers v4');
  const v5only = openExec(s, 'shell', q, [V5_PROTOCOL]);
  await assert.rejects(within(5000, v5only.opened, 'v5 refusal'));
  assert.equal((await within(5000, v5only.refused, 'v5 body')).status, 403);
  assert.deepEqual(s.execs.map((e) => e.protocol), [V4_PROTOCOL, V5_PROTOCOL, V1_PROTOCOL, V4_PROTOCOL]);
});

// ---------------------------------------------------------------------------------------------
// Exec streams

test('v5 exec: readiness frame, stdout and stderr channels, exactly the NonZeroExitCode Status', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const c = openExec(s, 'shell', execQuery(SH_OUT_ERR_EXIT3, { stdout: true, stderr: true }), [V5_PROTOCOL, V4_PROTOCOL]);
  assert.equal(await within(5000, c.opened, 'open'), V5_PROTOCOL);
  const closed = await within(10_000, c.closed, 'close');
  assert.equal(closed.code, 1000);
  assert.deepEqual(c.frames[0], { ch: 1, data: Buffer.alloc(0) }, 'first frame: empty readiness frame on stdout');
  assert.equal(c.output(1), 'out\n');
  assert.equal(c.output(2), 'err\n');
  assert.equal(c.frames.at(-1)?.ch, 3, 'the Status is the last frame');
  assert.equal(c.frames.filter((f) => f.ch === 3).length, 1);
  assert.equal(c.statusText(), '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command terminated with exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}');
  const rec = s.execs[0];
  assert.ok(rec);
  assert.deepEqual(rec.command, SH_OUT_ERR_EXIT3);
  assert.equal(rec.container, 'main');
  assert.equal(rec.protocol, V5_PROTOCOL);
  assert.deepEqual(await within(5000, rec.exit, 'exit'), { code: 3, signal: null });
  assert.equal(s.requests.at(-1)?.status, 101);
});

test('v4 exec reports the kubelet message; success is the bare Success Status', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const c = openExec(s, 'shell', execQuery(SH_OUT_ERR_EXIT3, { stdout: true, stderr: true }), [V4_PROTOCOL]);
  await within(10_000, c.closed, 'close');
  assert.deepEqual(c.frames[0], { ch: 1, data: Buffer.alloc(0) });
  assert.equal(c.statusText(), '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c echo out; echo err \\u003e\\u00262; exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}');
  const ok = openExec(s, 'shell', execQuery(['true'], { stdout: true }), [V4_PROTOCOL]);
  await within(10_000, ok.closed, 'close');
  assert.equal(ok.statusText(), '{"metadata":{},"status":"Success"}');
  const killed = openExec(s, 'shell', execQuery(['sh', '-c', 'kill -TERM $$'], { stdout: true }), [V4_PROTOCOL]);
  await within(10_000, killed.closed, 'close');
  assert.equal(JSON.parse(killed.statusText()).details.causes[0].message, '143', 'a signal is reported as 128 + signo');
});

test('channel.k8s.io writes only a failure message, as text, on channel 3', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const fail = openExec(s, 'shell', execQuery(['sh', '-c', 'exit 2'], { stdout: true }), [V1_PROTOCOL]);
  await within(10_000, fail.closed, 'close');
  assert.equal(fail.statusText(), 'command terminated with non-zero exit code: error executing command [sh -c exit 2], exit code 2');
  const ok = openExec(s, 'shell', execQuery(['true'], { stdout: true }), [V1_PROTOCOL]);
  await within(10_000, ok.closed, 'close');
  assert.equal(ok.frames.filter((f) => f.ch === 3).length, 0);
});

test('v5 CLOSE on stdin gives the process EOF', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const c = openExec(s, 'shell', execQuery(['wc', '-c'], { stdin: true, stdout: true, stderr: true }), [V5_PROTOCOL]);
  await within(5000, c.opened, 'open');
  send(c.ws, 0, 'hello ');
  send(c.ws, 0, 'world\n');
  c.ws.send(Buffer.from([255, 0]));
  await within(10_000, c.closed, 'close');
  assert.equal(c.output(1).trim(), '12');
  assert.equal(c.statusText(), '{"metadata":{},"status":"Success"}');
});

test('stdin backpressure: a process that does not read yet loses nothing, and CLOSE stays in order', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const c = openExec(s, 'shell', execQuery(['sh', '-c', 'sleep 1; wc -c'], { stdin: true, stdout: true, stderr: true }), [V5_PROTOCOL]);
  await within(5000, c.opened, 'open');
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let i = 0; i < 128; i++) send(c.ws, 0, chunk);
  c.ws.send(Buffer.from([255, 0]));
  await within(20_000, c.closed, 'close');
  assert.equal(c.output(1).trim(), String(128 * chunk.length));
  assert.equal(c.statusText(), '{"metadata":{},"status":"Success"}');
});

test('a full stdin pipe releases the exec socket when stdin ends or breaks, not only on drain', async (t) => {
  // The v5 test above hung under load when its last data frame and the CLOSE came in one socket
  // read: stdin was ended while the pipe was full, and a Writable emits no 'drain' once ending.
  const root = mkdtempSync(join(tmpdir(), 'fake-runtime-'));
  const runtime = new ContainerRuntime(root);
  t.after(() => {
    runtime.killAll();
    rmSync(root, { recursive: true, force: true });
  });
  const start = (script: string): { proc: ContainerProcess; released: () => boolean; release: Promise<void>; stdout: () => string } => {
    const outcome = runtime.spawn({ key: { namespace: 'demo', pod: 'shell', container: 'main' }, argv: ['sh', '-c', script], tty: false, stdin: true, noShell: false });
    assert.ok(outcome.ok);
    const proc = outcome.process;
    let released = false;
    let out = '';
    const release = new Promise<void>((resolve) => {
      proc.onStdinDrain(() => {
        released = true;
        resolve();
      });
    });
    proc.onOutput((stream, chunk) => {
      if (stream === 'stdout') out += chunk.toString('utf8');
    });
    return { proc, released: () => released, release, stdout: () => out };
  };
  const chunk = Buffer.alloc(256 * 1024, 0x61);

  const ended = start('sleep 1; wc -c');
  assert.equal(ended.proc.writeStdin(chunk), false, 'a reader that sleeps leaves the pipe full');
  ended.proc.closeStdin();
  await within(10_000, ended.proc.done, 'exit of wc');
  assert.equal(ended.stdout().trim(), String(chunk.length), 'every byte reached the process before EOF');
  assert.ok(ended.released(), 'stdin ended with the pipe full and the reader was never released');

  const gone = start('sleep 0.2');
  assert.equal(gone.proc.writeStdin(chunk), false);
  await within(10_000, gone.proc.done, 'exit of a process that never reads');
  await within(5000, gone.release, 'release after EPIPE');
});

test('v4.base64.channel.k8s.io uses text frames with a digit channel and base64 data', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const c = openExec(s, 'shell', execQuery(['sh', '-c', 'read line; echo "got $line"; echo oops >&2'], { stdin: true, stdout: true, stderr: true }), [V4_BASE64_PROTOCOL], { base64: true });
  assert.equal(await within(5000, c.opened, 'open'), V4_BASE64_PROTOCOL);
  c.ws.send(`0${Buffer.from('hi there\n').toString('base64')}`);
  await within(10_000, c.closed, 'close');
  assert.deepEqual(c.frames[0], { ch: 1, data: Buffer.alloc(0) });
  assert.equal(c.output(1), 'got hi there\n');
  assert.equal(c.output(2), 'oops\n');
  assert.equal(c.statusText(), '{"metadata":{},"status":"Success"}');
});

test('tty exec: starts at 0x0, stderr not opened, channel-4 resizes reach stty', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const first = openExec(s, 'shell', execQuery(['stty', 'size'], { stdout: true, tty: true }), [V5_PROTOCOL]);
  await within(10_000, first.closed, 'close');
  assert.equal(first.output(1).trim(), '0 0', 'runc gives the console no size before the first resize');

  const c = openExec(s, 'shell', execQuery(['sh', '-c', 'read x; stty size; echo "TERM=$TERM"'], { stdin: true, stdout: true, stderr: true, tty: true }), [V4_PROTOCOL]);
  await within(5000, c.opened, 'open');
  send(c.ws, 4, '{"width":90,"height":30}');
  send(c.ws, 4, '{"Width":0,"Height":0}');
  send(c.ws, 4, '{"Width":100,"Height":40}');
  await sleep(100);
  send(c.ws, 0, 'go\n');
  await within(10_000, c.closed, 'close');
  const out = c.output(1);
  assert.match(out, /40 100\r\n/);
  assert.match(out, /TERM=xterm/);
  assert.equal(c.output(2), '');
  assert.equal(c.statusText(), '{"metadata":{},"status":"Success"}');
  const rec = s.execs[1];
  assert.ok(rec);
  assert.equal(rec.tty, true);
  assert.equal(rec.stderr, false);
  assert.deepEqual(rec.resizes, [{ cols: 90, rows: 30 }, { cols: 100, rows: 40 }]);
});

test('a missing command and a shell-less image fail as runc reports it', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  s.addPod({ namespace: 'demo', name: 'distroless', containers: [{ name: 'app', noShell: true }] });
  const v5 = openExec(s, 'shell', execQuery(['no-such-tool'], { stdout: true }), [V5_PROTOCOL]);
  await within(10_000, v5.closed, 'close');
  const st5 = JSON.parse(v5.statusText());
  assert.equal(st5.reason, 'InternalError');
  assert.equal(st5.code, 500);
  assert.match(st5.message, /^Internal error occurred: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "[0-9a-f]{64}": OCI runtime exec failed: exec failed: unable to start container process: exec: "no-such-tool": executable file not found in \$PATH: unknown$/);
  assert.equal(st5.details.causes[0].message, st5.message.slice('Internal error occurred: '.length));

  const v4 = openExec(s, 'distroless', execQuery(['sh', '-c', 'true'], { stdout: true }), [V4_PROTOCOL]);
  await within(10_000, v4.closed, 'close');
  assert.match(JSON.parse(v4.statusText()).message, /^Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "[0-9a-f]{64}": OCI runtime exec failed: exec failed: unable to start container process: exec: "sh": executable file not found in \$PATH: unknown$/);

  const abs = openExec(s, 'distroless', execQuery(['/bin/sh'], { stdout: true }), [V4_PROTOCOL]);
  await within(10_000, abs.closed, 'close');
  assert.match(JSON.parse(abs.statusText()).message, /exec: "\/bin\/sh": stat \/bin\/sh: no such file or directory: unknown$/);
  assert.equal(s.execs.every((e) => e.pid === null), true);
});

test('flow control: a client that stops reading blocks the process, and gets every byte later', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const total = 50 * 1024 * 1024;
  const rssBefore = process.memoryUsage().rss;
  const c = openExec(s, 'shell', execQuery(['head', '-c', '50M', '/dev/zero'], { stdout: true, stderr: true }), [V5_PROTOCOL]);
  await within(5000, c.opened, 'open');
  c.ws.pause();
  await sleep(2500);
  const rec = s.execs[0];
  assert.ok(rec?.pid);
  const finished = await Promise.race([rec.exit.then(() => true), sleep(10).then(() => false)]);
  assert.equal(finished, false, 'the process must still be blocked writing');
  assert.ok(isAlive(rec.pid), 'the process is alive');
  const grown = process.memoryUsage().rss - rssBefore;
  assert.ok(grown < 40 * 1024 * 1024, `fixture memory grew by ${Math.round(grown / 1e6)} MB while the client was paused`);
  c.ws.resume();
  await within(60_000, c.closed, 'close after draining');
  const received = c.frames.filter((f) => f.ch === 1).reduce((n, f) => n + f.data.length, 0);
  assert.equal(received, total);
  assert.ok(c.frames.every((f) => f.data.length <= 32 * 1024), 'frames stay within io.Copy buffer size');
  assert.equal(c.statusText(), '{"metadata":{},"status":"Success"}');
});

test('deletePod kills the exec processes and the stream ends with 137', async (t) => {
  const s = await startServer(t);
  demoPod(s);
  const c = openExec(s, 'shell', execQuery(['sh', '-c', 'sleep 300 & echo started; wait'], { stdout: true, stderr: true }), [V5_PROTOCOL]);
  await within(5000, c.opened, 'open');
  await c.waitFor(() => c.output(1).includes('started'), 'started');
  const pids = s.containerProcesses('demo', 'shell', 'main');
  assert.ok(pids.length >= 2, `sh and sleep are found: ${pids.join(',')}`);
  s.deletePod('demo', 'shell');
  await within(10_000, c.closed, 'close');
  const st = JSON.parse(c.statusText());
  assert.equal(st.reason, 'NonZeroExitCode');
  assert.equal(st.details.causes[0].message, '137');
  assert.deepEqual(await within(5000, s.execs[0]?.exit ?? Promise.reject(new Error('no exec')), 'exit'), { code: null, signal: 'SIGKILL' });
  assert.deepEqual(s.containerProcesses('demo', 'shell', 'main'), []);
  assert.equal((await request(s, '/api/v1/namespaces/demo/pods/shell')).status, 404);
});

test('a client that goes away leaves the process running; stop() kills it', async (t) => {
  const s = await FakeKubeApiServer.start({ token: TOKEN });
  let stopped = false;
  t.after(async () => {
    if (!stopped) await s.stop();
  });
  demoPod(s);
  const c = openExec(s, 'shell', execQuery(['sh', '-c', 'echo up; sleep 300'], { stdin: true, stdout: true, tty: true }), [V5_PROTOCOL]);
  await within(5000, c.opened, 'open');
  await c.waitFor(() => c.output(1).includes('up'), 'up');
  c.ws.terminate();
  await within(5000, c.closed, 'close');
  await sleep(300);
  const pids = s.containerProcesses('demo', 'shell', 'main');
  assert.ok(pids.length >= 1, 'the shell survives the disconnect');
  const rec = s.execs[0];
  assert.ok(rec?.pid && isAlive(rec.pid));
  await s.stop();
  stopped = true;
  for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} was killed by stop()`);
});

test('main.ts serves demo/shell and writes a kubeconfig', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fake-apiserver-main-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = join(dir, 'kubeconfig');
  const child = spawn(process.execPath, [compiled('test/fixtures/kube-apiserver/main.ts'), '--port', '0', '--kubeconfig-out', kubeconfig], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const url = await within(30_000, new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`main.ts exited with ${code}`)));
  }), 'main.ts URL');
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const cfg = readFileSync(kubeconfig, 'utf8');
  const ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(cfg)?.[1] ?? '', 'base64').toString();
  const token = JSON.parse(/token: (.+)/.exec(cfg)?.[1] ?? '""') as string;
  assert.match(cfg, new RegExp(`server: ${url}`));
  assert.match(cfg, /namespace: "demo"/);
  const body = await within(10_000, new Promise<string>((resolve, reject) => {
    https.get(`${url}/api/v1/namespaces/demo/pods/shell`, { ca, headers: { Authorization: `Bearer ${token}` } }, (res) => {
      let b = '';
      res.on('data', (d: Buffer) => { b += d.toString(); });
      res.on('end', () => resolve(b));
    }).on('error', reject);
  }), 'GET demo/shell');
  assert.equal(JSON.parse(body).spec.containers[0].name, 'main');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await within(10_000, exited, 'main.ts exit'), 0);
});

/** Kubernetes specifics beyond the shared suite: pod and container choice, API server problems. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';
import { runSsh } from '../helpers/ssh-client.ts';

describe('kubernetes backend: choosing the pod and container', () => {
  let cluster: TestCluster;
  let b: TestBridge;
  const where = (login: string) => runSsh({ port: b.port, key: b.key, login, command: 'echo "$PODBRIDGE_FAKE_CONTAINER"' });
  before(async () => {
    cluster = await startTestCluster();
    b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig });
  });
  after(async () => {
    await b.close();
    await cluster.stop();
  });

  it('every written form reaches the same container', async () => {
    for (const login of ['team-a.web-1', 'team-a/web-1', 'team-a.web-1+app', 'team-a/web-1/app', 'web-1', 'team-a.pod/web-1']) {
      const r = await where(login);
      assert.equal(r.stdout.toString(), 'team-a/web-1/app\n', `${login}: ${r.stderr}`);
    }
    assert.equal((await where('team-a.web-1+sidecar')).stdout.toString(), 'team-a/web-1/sidecar\n');
    assert.equal((await where('team-b.api-0')).stdout.toString(), 'team-b/api-0/api\n');
  });

  it('uses the kubectl.kubernetes.io/default-container annotation', async () => {
    assert.equal((await where('team-a.annotated')).stdout.toString(), 'team-a/annotated/main\n');
  });

  it('picks the running pod of a deployment, as kubectl exec deploy/NAME does', async () => {
    for (const login of ['team-a.deploy/web', 'team-a.deployment/web+app', 'team-a/deploy/web', 'deploy/web']) {
      const r = await where(login);
      assert.equal(r.stdout.toString(), 'team-a/web-1/app\n', `${login}: ${r.stderr}`);
    }
  });

  it('impersonation is off without a policy: requests carry no Impersonate headers', async () => {
    await where('team-a.web-1');
    const execs = cluster.api.requests.filter((r) => r.path.endsWith('/exec'));
    assert.ok(execs.length > 0);
    assert.ok(execs.every((r) => r.headers['impersonate-user'] === undefined));
  });
});

describe('kubernetes backend: API server problems', () => {
  it('API server unreachable: names the server, other sessions unaffected', async () => {
    const cluster = await startTestCluster();
    const url = cluster.api.url;
    await cluster.api.stop(); // the port is now closed
    const b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig });
    try {
      const r = await runSsh({ port: b.port, key: b.key, login: 'team-a.web-1', command: 'true' });
      assert.equal(r.code, 255);
      assert.equal(r.stderr, `podbridge: cannot reach the Kubernetes API server at ${url}: connection refused; check --kubeconfig/--context and the network\n`);
    } finally {
      await b.close();
    }
  });

  it('TLS failure (a CA that did not sign the server): names the server and the reason', async () => {
    const real = await startTestCluster();
    const other = await startTestCluster();
    // The kubeconfig trusts another server's CA.
    const text = fs.readFileSync(real.kubeconfig, 'utf8');
    const otherCa = Buffer.from(other.api.caPem).toString('base64');
    fs.writeFileSync(real.kubeconfig, text.replace(/certificate-authority-data: *\S+/, `certificate-authority-data: ${otherCa}`).replace(/"certificate-authority-data": *"[^"]+"/, `"certificate-authority-data": "${otherCa}"`));
    const b = await startTestBridge({ backend: 'kubernetes', kubeconfig: real.kubeconfig });
    try {
      const r = await runSsh({ port: b.port, key: b.key, login: 'team-a.web-1', command: 'true' });
      assert.equal(r.code, 255);
      assert.match(r.stderr, new RegExp(`^podbridge: TLS with the Kubernetes API server at ${real.api.url.replace(/[.]/g, '\\.')} failed: .+; check certificate-authority`));
    } finally {
      await b.close();
      await real.stop();
      await other.stop();
    }
  });
});

describe('kubernetes backend: images without a shell (distroless)', () => {
  let cluster: TestCluster;
  let b: TestBridge;
  before(async () => {
    cluster = await startTestCluster();
    b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig });
  });
  after(async () => {
    await b.close();
    await cluster.stop();
  });

  it('a plain command still runs, split as sh would split it, and the log says cleanup is not guaranteed', async () => {
    const r = await runSsh({ port: b.port, key: b.key, login: 'team-a.distroless', command: `printf '[%s]' 'a  b' "c \\"d\\"" e\\ f` });
    assert.equal(r.stdout.toString(), '[a  b][c "d"][e f]', r.stderr);
    assert.equal(r.code, 0);
    assert.ok(b.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('process cleanup could not be guaranteed: the image has no /bin/sh')));
    const failing = await runSsh({ port: b.port, key: b.key, login: 'team-a.distroless', command: 'false' });
    assert.equal(failing.code, 1, 'exit codes still come back');
  });

  it('an interactive shell is refused with what to do instead', async () => {
    const r = await runSsh({ port: b.port, key: b.key, login: 'team-a.distroless', extraArgs: ['-T'] });
    assert.equal(r.code, 255);
    assert.equal(r.stderr, 'podbridge: container "app" in pod "distroless" in namespace "team-a" has no /bin/sh, so there is no shell to open; run a command instead (ssh LOGIN /path/to/program ARGS), or add a shell with kubectl debug\n');
  });
});

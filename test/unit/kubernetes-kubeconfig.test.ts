import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isBridgeError } from '../../src/errors.ts';
import { findKubeconfig, loadKubeconfig } from '../../src/backends/kubernetes/api/kubeconfig.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'podbridge-kubeconfig-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function kubeconfig(file: string, opts: { current?: string; contexts: Array<{ name: string; namespace?: string; server?: string }> }): string {
  const full = path.join(dir, file);
  const lines = ['apiVersion: v1', 'kind: Config', `current-context: ${opts.current ?? opts.contexts[0]?.name ?? ''}`, 'clusters:'];
  for (const c of opts.contexts) lines.push(`- name: ${c.name}-cluster`, '  cluster:', `    server: ${c.server ?? `https://${c.name}.example:6443/`}`);
  lines.push('users:');
  for (const c of opts.contexts) lines.push(`- name: ${c.name}-user`, '  user:', '    token: t0k3n');
  lines.push('contexts:');
  for (const c of opts.contexts) {
    lines.push(`- name: ${c.name}`, '  context:', `    cluster: ${c.name}-cluster`, `    user: ${c.name}-user`);
    if (c.namespace) lines.push(`    namespace: ${c.namespace}`);
  }
  fs.writeFileSync(full, lines.join('\n') + '\n');
  return full;
}

function rejects(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isBridgeError(err));
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    assert.ok(!err.message.includes('\n'));
    return true;
  });
}

describe('findKubeconfig', () => {
  const home = fs.mkdtempSync(path.join(dir, 'home-'));
  const emptyHome = fs.mkdtempSync(path.join(dir, 'empty-'));
  fs.mkdirSync(path.join(home, '.kube'));
  const homeConfig = kubeconfig('home-config', { contexts: [{ name: 'h' }] });
  fs.copyFileSync(homeConfig, path.join(home, '.kube', 'config'));
  const sa = fs.mkdtempSync(path.join(dir, 'sa-'));
  fs.writeFileSync(path.join(sa, 'token'), 'x');

  it('prefers $KUBECONFIG and skips files that do not exist', () => {
    const a = kubeconfig('a', { contexts: [{ name: 'a' }] });
    const found = findKubeconfig({ env: { KUBECONFIG: `/nope${path.delimiter}${a}` }, homeDir: home });
    assert.deepEqual(found?.files, [a]);
    assert.match(found?.source ?? '', /^\$KUBECONFIG/);
    // A set $KUBECONFIG whose files are all missing is not silently replaced by ~/.kube/config.
    assert.equal(findKubeconfig({ env: { KUBECONFIG: '/nope' }, homeDir: home }), null);
  });

  it('then ~/.kube/config, then the in-cluster service account, else null', () => {
    assert.match(findKubeconfig({ env: {}, homeDir: home })?.source ?? '', /^~\/\.kube\/config/);
    const inCluster = findKubeconfig({ env: { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, homeDir: emptyHome, serviceAccountDir: sa });
    assert.match(inCluster?.source ?? '', /^in-cluster service account .*https:\/\/10\.0\.0\.1:443/);
    assert.deepEqual(inCluster?.files, []);
    assert.equal(findKubeconfig({ env: {}, homeDir: emptyHome, serviceAccountDir: sa }), null);
  });
});

describe('loadKubeconfig', () => {
  it('reads the server without its trailing slash and the context namespace', () => {
    const file = kubeconfig('ns', { contexts: [{ name: 'dev', namespace: 'team-a' }] });
    const loaded = loadKubeconfig({ kubeconfig: file });
    assert.equal(loaded.server, 'https://dev.example:6443');
    assert.equal(loaded.contextName, 'dev');
    assert.equal(loaded.contextNamespace, 'team-a');
  });

  it('switches to --context and reports unknown contexts with the available ones', () => {
    const file = kubeconfig('two', { contexts: [{ name: 'one' }, { name: 'two', namespace: 'b' }] });
    assert.equal(loadKubeconfig({ kubeconfig: file, context: 'two' }).server, 'https://two.example:6443');
    rejects(() => loadKubeconfig({ kubeconfig: file, context: 'three' }), 'api-unreachable', /context "three" not found in kubeconfig .*; available: one, two/);
  });

  it('names a missing or broken file', () => {
    rejects(() => loadKubeconfig({ kubeconfig: path.join(dir, 'missing') }), 'api-unreachable', /kubeconfig .*missing does not exist/);
    const broken = path.join(dir, 'broken');
    fs.writeFileSync(broken, 'clusters: [unclosed\n');
    rejects(() => loadKubeconfig({ kubeconfig: broken }), 'api-unreachable', /cannot load kubeconfig .*broken/);
  });

  it('refuses plain http unless TLS verification is explicitly off', () => {
    const file = kubeconfig('http', { contexts: [{ name: 'plain', server: 'http://127.0.0.1:8080' }] });
    rejects(() => loadKubeconfig({ kubeconfig: file }), 'api-unreachable', /plain http:\/\/127\.0\.0\.1:8080; use https/);
  });
});

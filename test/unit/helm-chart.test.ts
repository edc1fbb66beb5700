/**
 * deploy/helm/podbridge as a cluster would receive it: rendered by the real `helm template`
 * (upstream's binary, put in place by test/setup/helm.sh), every object validated against the
 * Kubernetes API schemas (kubernetes-models), the defaults compared with what `kubectl kustomize
 * deploy/base` renders (the two must describe the same deployment), and the values a user sets
 * checked in the output: host key Secret, PROXY protocol, annotations, the drain rule; values of
 * the wrong type are refused by the chart's values.schema.json.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { parsePolicy } from '../../src/policy/index.ts';
import { REPO } from '../helpers/paths.ts';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: unknown };
/** Rendered YAML, read as JSON: the shapes are checked by the schemas, not by TypeScript. */
type Any = any;

/** Where test/setup/helm.sh puts it (.ci/run runs that script). */
const HELM = '/var/cache/podbridge/helm-v4.1.4/helm';
const CHART = path.join(REPO, 'deploy/helm/podbridge');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-helm-'));
after(() => fs.rmSync(home, { recursive: true, force: true }));

/** `helm template podbridge CHART -n podbridge ARGS`: the objects, or the error helm printed. */
function render(args: string[]): { objects: Obj[]; error: string | null } {
  // helm keeps its config and cache under HOME (XDG): an empty one, as in CI.
  const r = spawnSync(HELM, ['template', 'podbridge', CHART, '--namespace', 'podbridge', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home } });
  if (r.error) throw r.error;
  if (r.status !== 0) return { objects: [], error: r.stderr.trim() };
  return { objects: YAML.parseAllDocuments(r.stdout).map((d) => d.toJSON() as Obj).filter((o) => o !== null), error: null };
}

const ok = (args: string[] = []): Obj[] => {
  const r = render(['--set', 'hostKeys.existingSecret=podbridge-host-keys', ...args]);
  assert.equal(r.error, null);
  return r.objects;
};
const find = (objects: Obj[], kind: string): Any => {
  const o = objects.find((x) => x.kind === kind);
  assert.ok(o, `no ${kind} rendered`);
  return o;
};

let chart: Obj[];
let base: Obj[];

before(() => {
  if (!fs.existsSync(HELM)) throw new Error(`${HELM} is missing: run \`bash test/setup/helm.sh\` (as .ci/run does) to put upstream's helm there`);
  chart = ok();
  base = YAML.parseAllDocuments(execFileSync('kubectl', ['kustomize', path.join(REPO, 'deploy/base')], { encoding: 'utf8' })).map((d) => d.toJSON() as Obj);
});

/** Drops what legitimately differs between a Helm release and the Kustomize base: the release's
 * instance label (everywhere, selectors included), object metadata, and the config checksum. */
function comparable(o: Obj): Any {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'app.kubernetes.io/instance' && k !== 'checksum/config') out[k] = strip(x);
    // The pod template's annotations held only the checksum.
    if (typeof out.annotations === 'object' && out.annotations !== null && Object.keys(out.annotations).length === 0) delete out.annotations;
    return out;
  };
  const { metadata: _metadata, ...rest } = o;
  return strip(rest);
}

describe('deploy/helm/podbridge (helm template)', () => {
  it('renders objects that are valid against the Kubernetes API schemas', async () => {
    for (const objects of [chart, ok(['--set-file', `hostKeys.keys.ssh_host_ed25519_key=${path.join(REPO, 'package.json')}`, '--set', 'hostKeys.existingSecret='])]) {
      for (const o of objects) {
        const models = (await import(`kubernetes-models/${o.apiVersion}`)) as Record<string, new (data: unknown) => { validate(): void }>;
        const Model = models[o.kind];
        assert.ok(Model, `kubernetes-models has no ${o.apiVersion} ${o.kind}`);
        assert.doesNotThrow(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`);
      }
    }
  });

  it('with its defaults, describes the same deployment as deploy/base (all but the Namespace)', () => {
    assert.deepEqual(
      chart.map((o) => o.kind).sort(),
      base.map((o) => o.kind).filter((k) => k !== 'Namespace').sort(),
    );
    for (const o of chart) {
      const twin = base.find((b) => b.kind === o.kind && b.metadata.name === o.metadata.name);
      assert.ok(twin, `deploy/base has no ${o.kind}/${o.metadata.name}`);
      assert.deepEqual(comparable(o), comparable(twin), `${o.kind}/${o.metadata.name} differs from deploy/base`);
      if (o.kind !== 'ClusterRole' && o.kind !== 'ClusterRoleBinding') assert.equal(o.metadata.namespace, 'podbridge');
    }
    // Selectors still pick the pods (the instance label is on both sides).
    const d = find(chart, 'Deployment');
    for (const sel of [d.spec.selector.matchLabels, find(chart, 'Service').spec.selector, find(chart, 'PodDisruptionBudget').spec.selector.matchLabels]) {
      for (const [k, v] of Object.entries(sel)) assert.equal(d.spec.template.metadata.labels[k], v, k);
    }
  });

  it('the policy both ship loads (and the comparison above can fail)', () => {
    for (const objects of [chart, base]) parsePolicy(find(objects, 'ConfigMap').data['policy.yaml'], 'policy.yaml');
    const changed = structuredClone(find(chart, 'Deployment'));
    changed.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false;
    assert.notDeepEqual(comparable(changed), comparable(find(base, 'Deployment')));
  });

  it('makes the host key Secret from --set-file, mounted 0440 for the fsGroup', () => {
    const keyFile = path.join(home, 'ssh_host_ed25519_key');
    // Not a key, and spelled in parts so that secret scanners do not flag this file.
    const armor = (edge: string) => `-----${edge} OPENSSH ${['PRIVATE', 'KEY'].join(' ')}-----`;
    fs.writeFileSync(keyFile, `${armor('BEGIN')}\nnot a real key\n${armor('END')}\n`);
    const objects = ok(['--set', 'hostKeys.existingSecret=', '--set-file', `hostKeys.keys.ssh_host_ed25519_key=${keyFile}`]);
    const secret = find(objects, 'Secret');
    assert.equal(Buffer.from(secret.data.ssh_host_ed25519_key, 'base64').toString(), fs.readFileSync(keyFile, 'utf8'));
    const vol = find(objects, 'Deployment').spec.template.spec.volumes.find((v: Any) => v.name === 'host-keys');
    assert.deepEqual(vol.secret, { secretName: secret.metadata.name, defaultMode: 0o440 });
    assert.equal(chart.some((o) => o.kind === 'Secret'), false, 'no Secret when an existing one is named');
  });

  it('refuses to render without host keys, and with a grace period shorter than the drain bound', () => {
    assert.match(render([]).error ?? '', /hostKeys: give hostKeys\.existingSecret .* or hostKeys\.keys/);
    const short = render(['--set', 'hostKeys.existingSecret=k', '--set', 'drain.shutdownGrace=30']);
    assert.match(short.error ?? '', /terminationGracePeriodSeconds \(10\) must be more than drain\.shutdownGrace \+ drain\.terminateGrace \+ 2 = 34 s/);
    const longer = ok(['--set', 'drain.shutdownGrace=30', '--set', 'terminationGracePeriodSeconds=40']);
    const pod = find(longer, 'Deployment').spec.template.spec;
    assert.equal(pod.terminationGracePeriodSeconds, 40);
    assert.deepEqual(pod.containers[0].env.find((e: Any) => e.name === 'PODBRIDGE_SHUTDOWN_GRACE'), { name: 'PODBRIDGE_SHUTDOWN_GRACE', value: '30' });
  });

  it('behind a PROXY protocol balancer: annotations on the Service, the balancer in PODBRIDGE_PROXY_PROTOCOL_FROM', () => {
    const objects = ok([
      '--set-string', 'service.annotations.service\\.beta\\.kubernetes\\.io/do-loadbalancer-enable-proxy-protocol=true',
      '--set', 'service.externalTrafficPolicy=Cluster',
      '--set', 'proxyProtocol.from={10.0.0.0/8,192.0.2.7}',
      '--set', 'replicaCount=3',
      '--set', 'env.PODBRIDGE_IDLE_TIMEOUT=3600',
    ]);
    const svc = find(objects, 'Service');
    assert.equal(svc.metadata.annotations['service.beta.kubernetes.io/do-loadbalancer-enable-proxy-protocol'], 'true');
    assert.equal(svc.spec.externalTrafficPolicy, 'Cluster');
    const d = find(objects, 'Deployment');
    assert.equal(d.spec.replicas, 3);
    const env = Object.fromEntries(d.spec.template.spec.containers[0].env.map((e: Any) => [e.name, e.value]));
    assert.equal(env.PODBRIDGE_PROXY_PROTOCOL_FROM, '10.0.0.0/8,192.0.2.7');
    assert.equal(env.PODBRIDGE_IDLE_TIMEOUT, '3600');
  });

  it('values.schema.json: a value of the wrong type is refused with its path, by helm template and helm lint', () => {
    const word = render(['--set', 'hostKeys.existingSecret=k', '--set', 'replicaCount=two']);
    assert.match(word.error ?? '', /values don't meet the specifications of the schema\(s\)/);
    assert.match(word.error ?? '', /at '\/replicaCount': got string, want integer/);
    const port = render(['--set', 'hostKeys.existingSecret=k', '--set-string', 'service.port=22']);
    assert.match(port.error ?? '', /at '\/service\/port': got string, want integer/);
    const affinity = render(['--set', 'hostKeys.existingSecret=k', '--set', 'podAntiAffinity=always']);
    assert.match(affinity.error ?? '', /at '\/podAntiAffinity'/);
    const lint = spawnSync(HELM, ['lint', CHART, '--set', 'hostKeys.existingSecret=k', '--set', 'networkPolicy.enabled=yes'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home } });
    assert.notEqual(lint.status, 0);
    assert.match(lint.stdout + lint.stderr, /at '\/networkPolicy\/enabled': got string, want boolean/);
  });

  it('passes helm lint', () => {
    const r = spawnSync(HELM, ['lint', CHART, '--set', 'hostKeys.existingSecret=k'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home } });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });
});

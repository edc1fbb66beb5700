/**
 * deploy/base as a cluster would receive it: rendered by the real `kubectl kustomize`, every
 * object validated against the Kubernetes API schemas (kubernetes-models), and the operational
 * promises checked: replicas spread, client address kept, probes on the diagnostics port, a grace
 * period that covers the bridge's drain bound, a Secret every replica shares, a hardened pod.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import YAML from 'yaml';
import { REPO } from '../helpers/paths.ts';

type Obj = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: unknown };
/** Rendered YAML, read as JSON: the shapes are checked by the schemas, not by TypeScript. */
type Any = any;

let objects: Obj[];
const find = (kind: string): Any => {
  const o = objects.find((x) => x.kind === kind);
  assert.ok(o, `no ${kind} in the rendered base`);
  return o;
};

before(() => {
  const text = execFileSync('kubectl', ['kustomize', path.join(REPO, 'deploy/base')], { encoding: 'utf8' });
  objects = YAML.parseAllDocuments(text).map((d) => d.toJSON() as Obj);
});

describe('deploy/base (kubectl kustomize)', () => {
  it('renders objects that are valid against the Kubernetes API schemas', async () => {
    assert.deepEqual(objects.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'Deployment', 'Namespace', 'NetworkPolicy', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
    for (const o of objects) {
      const models = (await import(`kubernetes-models/${o.apiVersion}`)) as Record<string, new (data: unknown) => { validate(): void }>;
      const Model = models[o.kind];
      assert.ok(Model, `kubernetes-models has no ${o.apiVersion} ${o.kind}`);
      assert.doesNotThrow(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`);
    }
  });

  it('the validator does catch a wrong object (so the test above can fail)', async () => {
    const { Deployment } = (await import('kubernetes-models/apps/v1')) as Any;
    const broken = structuredClone(find('Deployment'));
    broken.spec.replicas = 'two';
    assert.throws(() => new Deployment(broken).validate(), /replicas must be integer/);
  });

  it('spreads two or more replicas over nodes, keeps one through disruptions, and keeps the client address', () => {
    const d = find('Deployment');
    assert.ok(d.spec.replicas >= 2);
    const anti = d.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    assert.equal(anti.topologyKey, 'kubernetes.io/hostname');
    for (const [k, v] of Object.entries(anti.labelSelector.matchLabels)) assert.equal(d.spec.template.metadata.labels[k], v);
    const svc = find('Service');
    assert.equal(svc.spec.type, 'LoadBalancer');
    assert.equal(svc.spec.externalTrafficPolicy, 'Local');
    assert.equal(find('PodDisruptionBudget').spec.minAvailable, 1);
  });

  it('probes the diagnostics port, and the grace period covers the drain bound', () => {
    const pod = find('Deployment').spec.template.spec;
    const c = pod.containers[0];
    const env = Object.fromEntries(c.env.map((e: Any) => [e.name, e.value]));
    const diagPort = Number(String(env.PODBRIDGE_DIAG_LISTEN).split(':').pop());
    assert.equal(c.ports.find((p: Any) => p.name === 'diag').containerPort, diagPort);
    assert.deepEqual([c.readinessProbe.httpGet.path, c.readinessProbe.httpGet.port], ['/readyz', 'diag']);
    assert.deepEqual([c.livenessProbe.httpGet.path, c.livenessProbe.httpGet.port], ['/healthz', 'diag']);
    // shutdown-grace + terminate-grace (default 2) + 2 s cleanup must end before the kubelet's KILL.
    const bound = Number(env.PODBRIDGE_SHUTDOWN_GRACE) + 2 + 2;
    assert.ok(pod.terminationGracePeriodSeconds > bound, `${pod.terminationGracePeriodSeconds} s <= ${bound} s`);
  });

  it('mounts one host key Secret readable by the pod\'s fsGroup, the policy as a reloadable directory, and runs hardened', () => {
    const pod = find('Deployment').spec.template.spec;
    const keys = pod.volumes.find((v: Any) => v.secret);
    assert.equal(keys.secret.defaultMode, 0o440);
    assert.ok(pod.securityContext.fsGroup > 0 && pod.securityContext.runAsNonRoot);
    const c = pod.containers[0];
    const policyMount = c.volumeMounts.find((m: Any) => m.name === pod.volumes.find((v: Any) => v.configMap).name);
    assert.equal(policyMount.subPath, undefined, 'a subPath mount never sees ConfigMap updates');
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    const rules = find('ClusterRole').rules as Any[];
    const verbs = (res: string) => rules.filter((r) => r.resources.includes(res)).flatMap((r) => r.verbs).sort();
    assert.deepEqual(verbs('pods/exec'), ['create', 'get']);
    assert.deepEqual(verbs('pods/portforward'), ['create', 'get']);
    assert.deepEqual(verbs('pods'), ['get', 'list']);
    assert.ok(rules.some((r) => r.verbs.includes('impersonate') && r.resourceNames?.length > 0), 'impersonation limited by resourceNames');
  });
});

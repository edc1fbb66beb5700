import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PodSchema, type Pod } from '../../src/backends/kubernetes/api/objects.ts';
import { labelSelectorQuery, pickPod, sortMostActiveFirst } from '../../src/backends/kubernetes/api/pod-selection.ts';

interface PodInit {
  name: string;
  phase?: string;
  node?: string;
  readySince?: string | null;
  restarts?: number;
  created?: string;
  deleting?: boolean;
}

function pod(init: PodInit): Pod {
  return PodSchema.parse({
    metadata: {
      name: init.name,
      creationTimestamp: init.created ?? '2024-01-01T00:00:00Z',
      ...(init.deleting ? { deletionTimestamp: '2024-06-01T00:00:00Z' } : {}),
    },
    spec: { nodeName: init.node ?? 'node-1', containers: [{ name: 'app' }] },
    status: {
      phase: init.phase ?? 'Running',
      conditions: init.readySince ? [{ type: 'Ready', status: 'True', lastTransitionTime: init.readySince }] : [],
      containerStatuses: [{ name: 'app', restartCount: init.restarts ?? 0, state: { running: {} } }],
    },
  });
}

const names = (pods: Pod[]) => pods.map((p) => p.metadata.name);

describe('label selector query', () => {
  it('renders matchLabels and every matchExpressions operator', () => {
    assert.equal(labelSelectorQuery({ matchLabels: { app: 'web', tier: 'front' } }), 'app=web,tier=front');
    assert.equal(
      labelSelectorQuery({
        matchLabels: { app: 'web' },
        matchExpressions: [
          { key: 'env', operator: 'In', values: ['prod', 'canary'] },
          { key: 'zone', operator: 'NotIn', values: ['b'] },
          { key: 'managed', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      }),
      'app=web,env in (canary,prod),zone notin (b),managed,!legacy',
    );
  });

  it('returns null for an empty or missing selector rather than matching every pod', () => {
    assert.equal(labelSelectorQuery({}), null);
    assert.equal(labelSelectorQuery(undefined), null);
    assert.equal(labelSelectorQuery({ matchLabels: {}, matchExpressions: [] }), null);
  });
});

describe('pod choice like kubectl exec deploy/NAME (sort.Reverse(ActivePods))', () => {
  it('prefers assigned, then Running, then ready pods', () => {
    const sorted = sortMostActiveFirst([
      pod({ name: 'unassigned', node: '', phase: 'Pending' }),
      pod({ name: 'pending', phase: 'Pending' }),
      pod({ name: 'running-not-ready', phase: 'Running' }),
      pod({ name: 'running-ready', phase: 'Running', readySince: '2024-01-02T00:00:00Z' }),
      pod({ name: 'unknown', phase: 'Unknown' }),
    ]);
    assert.deepEqual(names(sorted), ['running-ready', 'running-not-ready', 'unknown', 'pending', 'unassigned']);
  });

  it('among ready pods prefers the one ready longest, then fewer restarts, then the oldest', () => {
    assert.deepEqual(
      names(
        sortMostActiveFirst([
          pod({ name: 'ready-later', readySince: '2024-03-01T00:00:00Z' }),
          pod({ name: 'ready-earlier', readySince: '2024-02-01T00:00:00Z' }),
        ]),
      ),
      ['ready-earlier', 'ready-later'],
    );
    assert.deepEqual(
      names(sortMostActiveFirst([pod({ name: 'flaky', restarts: 5 }), pod({ name: 'steady', restarts: 0 })])),
      ['steady', 'flaky'],
    );
    assert.deepEqual(
      names(
        sortMostActiveFirst([
          pod({ name: 'newer', created: '2024-05-01T00:00:00Z' }),
          pod({ name: 'older', created: '2024-04-01T00:00:00Z' }),
        ]),
      ),
      ['older', 'newer'],
    );
  });

  it('picks only Running pods, and a terminating one only when nothing else runs', () => {
    assert.equal(pickPod([pod({ name: 'p', phase: 'Pending' }), pod({ name: 's', phase: 'Succeeded' })]), null);
    assert.equal(pickPod([])?.metadata.name, undefined);
    const chosen = pickPod([
      pod({ name: 'going', readySince: '2024-01-01T00:00:00Z', deleting: true }),
      pod({ name: 'staying', readySince: '2024-02-01T00:00:00Z' }),
    ]);
    assert.equal(chosen?.metadata.name, 'staying');
    assert.equal(pickPod([pod({ name: 'going', deleting: true })])?.metadata.name, 'going');
  });
});

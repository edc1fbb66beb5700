/**
 * Properties of the policy engine over random policies and requests:
 * - authorize() never throws and allows a request exactly when a naive reference evaluator
 *   (regular-expression globs, written from docs/policy.md) finds a rule that allows it;
 * - the two-call protocol is sound: what call 1 allows, call 2 allows; what call 1 refuses
 *   without `pending`, no pod or container can make call 2 allow;
 * - the loader turns any input whatsoever into a Policy or a PolicyError, nothing else.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { authorize, parsePolicy, PolicyError, resolveKey, type AccessRequest, type Action, type Policy } from '../../src/policy/index.ts';
import type { TargetRef, WorkloadKind } from '../../src/target.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-policy-prop-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const NAMES = ['alice', 'bob', 'carol'] as const;
const KEYS = Object.fromEntries(
  NAMES.map((n) => {
    const file = path.join(dir, n);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', n, '-f', file]);
    const line = fs.readFileSync(`${file}.pub`, 'utf8').trim();
    return [n, { line, blob: Buffer.from(line.split(' ')[1] ?? '', 'base64') }];
  }),
) as Record<(typeof NAMES)[number], { line: string; blob: Buffer }>;

const GROUPS = ['g1', 'g2'];
const NAMESPACES = ['a', 'b', 'team-a', 'team-b'];
const NAMESPACE_GLOBS = [...NAMESPACES, '*', 'team-*', '?', '*-a', 'team-?'];
const PODS = ['web-1', 'web-2', 'db-0', 'api-x'];
const POD_GLOBS = ['web-*', '*', 'db-?', 'api-*', '*-1', 'web-1'];
const WORKLOAD_NAMES = ['web', 'db', 'w', 'web2'];
const WORKLOAD_GLOBS = ['deploy/web', 'sts/db', '*/w*', 'deploy/*', 'ds/web', '*/*', 'job/db'];
const CONTAINERS = ['app', 'sidecar'];
const CONTAINER_GLOBS = ['app', '*', 'side*'];
const KEY_OPTIONS = ['', 'no-pty ', 'no-port-forwarding ', 'restrict ', 'restrict,pty ', 'restrict,port-forwarding '];
const KINDS: Record<string, WorkloadKind> = { deploy: 'deployment', sts: 'statefulset', ds: 'daemonset', job: 'job' };
const FLAGS = ['tty', 'commands', 'shell', 'fileTransfer', 'portForwarding'] as const;
const ACTIONS: Action[] = ['shell', 'command', 'file-transfer', 'port-forward'];
const NEEDS: Record<Action, (typeof FLAGS)[number] | 'observe'> = { shell: 'shell', command: 'commands', 'file-transfer': 'fileTransfer', 'port-forward': 'portForwarding', observe: 'observe' };

interface RawRule {
  identities?: string[];
  groups?: string[];
  namespaces: string[];
  pods?: string[];
  workloads?: string[];
  containers?: string[];
  tty?: boolean;
  commands?: boolean;
  shell?: boolean;
  fileTransfer?: boolean;
  portForwarding?: boolean;
  observe?: boolean;
}
interface RawIdentity {
  name: string;
  keys: string[];
  groups: string[];
}
interface RawPolicy {
  version: 1;
  groups: Array<{ name: string }>;
  identities: RawIdentity[];
  rules: RawRule[];
}

const subset = <T>(items: readonly T[]) => fc.subarray([...items]);
const nonEmpty = <T>(items: readonly T[]) => fc.subarray([...items], { minLength: 1 });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const identityArb = (name: (typeof NAMES)[number]): fc.Arbitrary<RawIdentity> =>
  fc.record({ options: fc.constantFrom(...KEY_OPTIONS), groups: subset(GROUPS) }).map(({ options, groups }) => ({ name, keys: [`${options}${KEYS[name].line}`], groups }));

const ruleArb: fc.Arbitrary<RawRule> = fc
  .record({
    identities: maybe(subset(NAMES)),
    groups: maybe(subset(GROUPS)),
    namespaces: nonEmpty(NAMESPACE_GLOBS),
    pods: maybe(nonEmpty(POD_GLOBS)),
    workloads: maybe(nonEmpty(WORKLOAD_GLOBS)),
    containers: maybe(nonEmpty(CONTAINER_GLOBS)),
    tty: maybe(fc.boolean()),
    commands: maybe(fc.boolean()),
    shell: maybe(fc.boolean()),
    fileTransfer: maybe(fc.boolean()),
    portForwarding: maybe(fc.boolean()),
  })
  .map((r) => {
    // The loader refuses rules without subjects or places; keep generated ones loadable.
    const rule: RawRule = Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as RawRule;
    if ((rule.identities ?? []).length === 0 && (rule.groups ?? []).length === 0) rule.identities = ['alice'];
    if (rule.pods === undefined && rule.workloads === undefined) rule.pods = ['*'];
    return rule;
  });

const policyArb: fc.Arbitrary<RawPolicy> = fc
  .record({
    present: nonEmpty(NAMES),
    alice: identityArb('alice'),
    bob: identityArb('bob'),
    carol: identityArb('carol'),
    rules: fc.array(ruleArb, { maxLength: 5 }),
  })
  .map(({ present, rules, ...ids }) => ({
    version: 1 as const,
    groups: GROUPS.map((name) => ({ name })),
    identities: present.map((n) => ids[n]),
    // Rules may only name identities that exist.
    rules: rules.map((r) => {
      const identities = r.identities?.filter((n) => present.includes(n as (typeof NAMES)[number]));
      const rule = { ...r, identities };
      if ((identities ?? []).length === 0 && (r.groups ?? []).length === 0) rule.identities = [present[0]!];
      return rule;
    }),
  }));

const refArb: fc.Arbitrary<TargetRef> = fc.oneof(
  fc.constantFrom(...PODS).map((name): TargetRef => ({ kind: 'pod', name })),
  fc.record({ kind: fc.constantFrom<WorkloadKind>('deployment', 'statefulset', 'daemonset', 'job'), name: fc.constantFrom(...WORKLOAD_NAMES) }),
);

const requestArb: fc.Arbitrary<AccessRequest & { who: (typeof NAMES)[number] }> = fc.record({
  who: fc.constantFrom(...NAMES),
  namespace: fc.constantFrom(...NAMESPACES),
  ref: refArb,
  action: fc.constantFrom(...ACTIONS),
  tty: fc.boolean(),
  container: fc.option(fc.constantFrom(...CONTAINERS), { nil: null }),
  podName: maybe(fc.constantFrom(...PODS)),
}).map(({ who, namespace, ref, action, tty, container, podName }) => ({
  who,
  target: { raw: 'x', namespace, ref, container: null },
  action,
  tty,
  container,
  ...(podName === undefined ? {} : { podName }),
}));

// --- The reference evaluator: the documented semantics, written as plainly as possible. -----

function globRegex(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\-]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}
const matches = (globs: readonly string[] | undefined, name: string) => (globs ?? []).some((g) => globRegex(g).test(name));

function referenceAllows(raw: RawPolicy, who: string, req: AccessRequest): boolean {
  const identity = raw.identities.find((i) => i.name === who);
  if (!identity) return false;
  const options = (identity.keys[0] ?? '').split(' ')[0] ?? '';
  const restricted = options.startsWith('restrict');
  const pty = !options.includes('no-pty') && (!restricted || options.includes(',pty'));
  const forwarding = !options.includes('no-port-forwarding') && (!restricted || options.includes(',port-forwarding'));
  if (req.tty && !pty) return false;
  if (req.action === 'port-forward' && !forwarding) return false;
  const ref = req.target.ref;
  const pod = req.podName ?? (ref.kind === 'pod' ? ref.name : undefined);
  return raw.rules.some((r) => {
    const applies = (r.identities ?? []).includes(who) || (r.groups ?? []).some((g) => identity.groups.includes(g));
    if (!applies || !matches(r.namespaces, req.target.namespace)) return false;
    const byPod = pod !== undefined && matches(r.pods, pod);
    const byWorkload =
      ref.kind !== 'pod' &&
      (r.workloads ?? []).some((w) => {
        const [kind, name] = w.split('/') as [string, string];
        return (kind === '*' || KINDS[kind] === ref.kind) && globRegex(name).test(ref.name);
      });
    if (!byPod && !byWorkload) return false;
    if (r.containers !== undefined && (req.container === null || !matches(r.containers, req.container))) return false;
    return r[NEEDS[req.action]] === true && (!req.tty || r.tty === true);
  });
}

function loadRaw(raw: RawPolicy): Policy {
  return parsePolicy(stringify(raw), 'random.yaml');
}

describe('policy properties', () => {
  it('authorize never throws and allows exactly what some rule allows (reference evaluator)', () => {
    let allowed = 0;
    let checked = 0;
    fc.assert(
      fc.property(policyArb, fc.array(requestArb, { minLength: 1, maxLength: 20 }), (raw, requests) => {
        const policy = loadRaw(raw);
        for (const { who, ...req } of requests) {
          const resolved = resolveKey(policy, KEYS[who].blob, '192.0.2.1', new Date());
          const present = raw.identities.some((i) => i.name === who);
          assert.equal(resolved.ok, present);
          if (!resolved.ok) continue;
          const decision = authorize(policy, resolved.identity, req);
          const expected = referenceAllows(raw, who, req);
          assert.equal(decision.allowed, expected, `${JSON.stringify(req)} for ${who} under\n${stringify(raw)}\n=> ${JSON.stringify(decision)}`);
          checked++;
          if (decision.allowed) {
            allowed++;
            // The rule it names allows the request on its own.
            const only = { ...raw, rules: [raw.rules[decision.rule - 1]!] };
            assert.equal(referenceAllows(only, who, req), true);
          } else {
            assert.match(decision.message, /^[\x20-\x7e]+$/);
            assert.ok(decision.message.startsWith(`identity "${who}" may not `), decision.message);
          }
        }
      }),
      { numRuns: 300 },
    );
    // The generators must reach both answers often enough to mean something.
    assert.ok(allowed > checked / 20 && allowed < checked, `allowed ${allowed} of ${checked}`);
  });

  it('the two-call protocol: call 2 keeps what call 1 allowed, and a non-pending refusal is final', () => {
    fc.assert(
      fc.property(policyArb, requestArb, fc.constantFrom(...PODS), fc.constantFrom(...CONTAINERS), (raw, { who, ...req }, pod, container) => {
        const policy = loadRaw(raw);
        const resolved = resolveKey(policy, KEYS[who].blob, '192.0.2.1', new Date());
        if (!resolved.ok) return;
        const before: AccessRequest = { target: req.target, action: req.action, tty: req.tty, container: req.container };
        const first = authorize(policy, resolved.identity, before);
        const podName = req.target.ref.kind === 'pod' ? req.target.ref.name : pod;
        const second = authorize(policy, resolved.identity, { ...before, podName, container: req.container ?? container });
        if (first.allowed) assert.equal(second.allowed, true, 'adding facts never takes access away');
        else if (!first.pending) assert.equal(second.allowed, false, `refused without pending, then allowed: ${first.message}`);
      }),
      { numRuns: 500 },
    );
  });

  it('any input gives a Policy or a PolicyError, never anything else', () => {
    const attempt = (text: string) => {
      try {
        parsePolicy(text, 'fuzz.yaml');
      } catch (err) {
        assert.ok(err instanceof PolicyError, `unexpected ${String(err)} for ${JSON.stringify(text)}`);
        for (const issue of err.issues) assert.ok(issue.line >= 1 && issue.message.length > 0);
      }
    };
    fc.assert(fc.property(fc.string({ maxLength: 200 }), attempt), { numRuns: 300 });
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => attempt(stringify(v))), { numRuns: 300 });
    // Near-valid files: a valid policy with one value replaced by anything.
    fc.assert(
      fc.property(policyArb, fc.jsonValue({ maxDepth: 2 }), fc.nat(), (raw, junk, pick) => {
        const text = stringify(raw).split('\n');
        const i = pick % text.length;
        const line = text[i] ?? '';
        const colon = line.indexOf(': ');
        text[i] = colon >= 0 ? `${line.slice(0, colon + 2)}${JSON.stringify(junk)}` : `${line}${JSON.stringify(junk)}`;
        attempt(text.join('\n'));
      }),
      { numRuns: 300 },
    );
  });
});

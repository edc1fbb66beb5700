/**
 * May this identity do this in this place? Default deny: a request is allowed only when one
 * rule that applies to the identity (by name or group) matches the namespace, the pod or
 * workload, the container, grants the action and, with a terminal, `tty` — and the credential
 * itself permits it (no-pty, no-port-forwarding, certificate extensions).
 *
 * Two calls per session, because a workload login (`team-a.deploy/web`) names its pod only
 * once the backend has picked one:
 *   1. before any Kubernetes API call, with `podName` absent and `container` as the login name
 *      gave it (null: the default container). A rule that speaks of the workload decides here;
 *      `pending: true` on a denial means a rule about pods or containers may still allow it.
 *   2. after resolution, with `podName` and the concrete `container`. This answer is final.
 * Adding facts only adds ways to match, so whatever call 1 allowed, call 2 allows too: the
 * server may always make both calls, and must make call 2 whenever call 1 was pending.
 *
 * Pure and total: never throws (anything unexpected is a denial), reads the clock nowhere.
 */
import type { DockerFacts } from '../backends/backend.ts';
import { formatDockerRef, type Target, type TargetRef } from '../target.ts';
import { anyGlobMatches, globMatch } from './glob.ts';
import type { Identity } from './identity.ts';
import type { Action, Capabilities, Policy, PolicyIdentity, Rule } from './types.ts';

/** A Target whose namespace the server already resolved (`target.namespace ?? default`). */
export type ResolvedTarget = Omit<Target, 'namespace'> & { readonly namespace: string };

export interface AccessRequest {
  readonly target: ResolvedTarget;
  readonly action: Action;
  /** A terminal was requested (pty-req). */
  readonly tty: boolean;
  /** Before resolution: the login name's container (null: the pod's default one, not known
   *  yet). After: the container the backend resolved. */
  readonly container: string | null;
  /** The pod the backend resolved the target to (call 2). For a pod target it defaults to the
   *  pod named in the login. */
  readonly podName?: string;
  /** A Docker target's container, once the backend resolved it (call 2). */
  readonly docker?: DockerFacts;
  /** port-forward only: the pod port asked for, checked against a rule's `ports`. */
  readonly port?: number;
}

/** Why a request was denied, for logs and metrics. */
export type DenialReason =
  | 'bad-request'
  | 'unknown-identity'
  | 'forced-command'
  | 'credential'
  | 'no-rules'
  | 'namespace'
  | 'place'
  | 'container'
  | 'action'
  | 'port'
  | 'tty'
  /** Call 1 only: a rule may still allow it once the pod and container are known. */
  | 'pending';

export type Decision =
  | { readonly allowed: true; readonly rule: number }
  | {
      readonly allowed: false;
      /** One printable ASCII line for the SSH user; also the log message. */
      readonly message: string;
      readonly reason: DenialReason;
      /** The rule that came closest to allowing it. */
      readonly rule?: number;
      /** A rule may still allow it once podName and the container are known (call 2). */
      readonly pending: boolean;
    };

export function authorize(policy: Policy, identity: Identity, request: AccessRequest): Decision {
  try {
    return decide(policy, identity, request);
  } catch {
    // A bug must cost access, never grant it.
    return deny('bad-request', 'access check failed inside the bridge; see the bridge log');
  }
}

/** The capability flag each action needs. */
export const ACTION_CAPABILITY: Readonly<Record<Action, keyof Capabilities>> = {
  shell: 'shell',
  command: 'commands',
  'file-transfer': 'fileTransfer',
  'port-forward': 'portForwarding',
  observe: 'observe',
};

/** Stages in the order they are checked: a later failing stage means a closer miss. */
const STAGES = ['namespace', 'place', 'container', 'action', 'port', 'tty'] as const;
type Stage = (typeof STAGES)[number];
export type RuleOutcome = { kind: 'allow' } | { kind: 'pending' } | { kind: 'fail'; stage: Stage };

/** Whether `rule` applies to `who` at all (by name, group, or everyone). */
export function ruleAppliesTo(rule: Rule, who: PolicyIdentity): boolean {
  if (rule.everyone || rule.identities.has(who.name)) return true;
  for (const g of who.groups) if (rule.groups.has(g)) return true;
  return false;
}

function decide(policy: Policy, identity: Identity, request: AccessRequest): Decision {
  if (request?.target?.docker !== undefined) return decideDocker(policy, identity, request);
  const problem = requestProblem(request);
  if (problem !== null) return deny('bad-request', `access check failed: ${problem}`);
  const name = identity.name;
  const doing = `identity ${q(name)} may not ${VERBS[request.action]} ${describePlace(request)}`;

  // Group membership is read from the policy in force now, not from the login-time snapshot:
  // a reload that removes someone from a group stops their next session on an old connection.
  const current = policy.identities.get(name);
  if (current === undefined) return deny('unknown-identity', `${doing}: the identity is no longer in the policy`);
  if (identity.forcedCommand !== null && request.action !== 'command' && request.action !== 'port-forward') {
    return deny('forced-command', `${doing}: its ${credential(identity)} has a forced command, and only that command may run`);
  }
  if (request.tty && !identity.permits.pty) {
    return deny('credential', `${doing}: its ${credential(identity)} does not permit a terminal (${identity.source.kind === 'key' ? 'no-pty or restrict' : 'no permit-pty'}); try ssh -T`);
  }
  if (request.action === 'port-forward' && !identity.permits.portForwarding) {
    return deny('credential', `${doing}: its ${credential(identity)} does not permit port forwarding (${identity.source.kind === 'key' ? 'no-port-forwarding or restrict' : 'no permit-port-forwarding'})`);
  }

  const applicable = policy.rules.filter((r) => ruleAppliesTo(r, current));
  if (applicable.length === 0) return deny('no-rules', `${doing}: no rule applies to identity ${q(name)}`);

  let best: { rule: Rule; outcome: RuleOutcome } | null = null;
  for (const rule of applicable) {
    const outcome = evaluate(rule, request);
    if (outcome.kind === 'allow') return { allowed: true, rule: rule.number };
    if (best === null || rank(outcome) > rank(best.outcome)) best = { rule, outcome };
  }
  const closest = best!;
  const summary = ` (${summarize(name, applicable)})`;
  if (closest.outcome.kind === 'pending') {
    return { ...deny('pending', `${doing}: rule #${closest.rule.number} may allow it once the pod and container are known${summary}`), rule: closest.rule.number, pending: true };
  }
  const stage = closest.outcome.kind === 'fail' ? closest.outcome.stage : 'namespace';
  const why = explain(stage, request, applicable);
  return { ...deny(stage, `${doing}: ${why}${summary}`), rule: closest.rule.number };
}

/**
 * A Docker target: rules with a `docker` section (and authorized_keys mode's rule for everyone)
 * match the resolved container's name, Compose project and service, and labels. Before
 * resolution (call 1) only the capabilities can be checked: a rule that grants them is pending.
 */
function decideDocker(policy: Policy, identity: Identity, request: AccessRequest): Decision {
  const ref = request.target.docker!;
  if (typeof request.action !== 'string' || !Object.hasOwn(ACTION_CAPABILITY, request.action)) return deny('bad-request', `access check failed: unknown action ${String(request.action)}`);
  const facts = request.docker;
  const place = facts === undefined ? `Docker ${formatDockerRef(ref)}` : `Docker container ${q(facts.name)}`;
  const doing = `identity ${q(identity.name)} may not ${VERBS[request.action]} ${place}`;
  const current = policy.identities.get(identity.name);
  if (current === undefined) return deny('unknown-identity', `${doing}: the identity is no longer in the policy`);
  if (identity.forcedCommand !== null && request.action !== 'command' && request.action !== 'port-forward') {
    return deny('forced-command', `${doing}: its ${credential(identity)} has a forced command, and only that command may run`);
  }
  if (request.tty && !identity.permits.pty) {
    return deny('credential', `${doing}: its ${credential(identity)} does not permit a terminal (${identity.source.kind === 'key' ? 'no-pty or restrict' : 'no permit-pty'}); try ssh -T`);
  }
  const applicable = policy.rules.filter((r) => ruleAppliesTo(r, current) && (r.everyone || (r.docker ?? null) !== null));
  if (applicable.length === 0) return deny('no-rules', `${doing}: no rule for identity ${q(identity.name)} names Docker containers`);
  let best: { rule: Rule; stage: 'place' | 'action' | 'tty' | 'pending' } | null = null;
  const order = ['place', 'action', 'tty', 'pending'] as const;
  for (const rule of applicable) {
    let stage: (typeof order)[number] | 'allow';
    if (facts !== undefined && !rule.everyone && !dockerRuleMatches(rule.docker!, facts)) stage = 'place';
    else if (!rule[ACTION_CAPABILITY[request.action]]) stage = 'action';
    else if (request.tty && !rule.tty) stage = 'tty';
    else stage = facts === undefined ? 'pending' : 'allow';
    if (stage === 'allow') return { allowed: true, rule: rule.number };
    if (best === null || order.indexOf(stage) > order.indexOf(best.stage)) best = { rule, stage };
  }
  const closest = best!;
  if (closest.stage === 'pending') {
    return { ...deny('pending', `${doing}: rule #${closest.rule.number} may allow it once the container is known`), rule: closest.rule.number, pending: true };
  }
  const why =
    closest.stage === 'place'
      ? `no rule allows Docker container ${q(facts?.name ?? '')}${facts?.project ? ` (Compose project ${q(facts.project)})` : ''}`
      : closest.stage === 'action'
        ? `no rule that reaches it grants ${ACTION_CAPABILITY[request.action]}`
        : 'no rule that reaches it grants tty (a terminal); without one: ssh -T';
  return { ...deny(closest.stage, `${doing}: ${why}`), rule: closest.rule.number };
}

function dockerRuleMatches(d: NonNullable<Rule['docker']>, facts: DockerFacts): boolean {
  if (d.containers !== null && !anyGlobMatches(d.containers, facts.name)) return false;
  if (d.projects !== null && (facts.project === null || !anyGlobMatches(d.projects, facts.project))) return false;
  if (d.services !== null && (facts.service === null || !anyGlobMatches(d.services, facts.service))) return false;
  for (const { key, value } of d.labels) {
    const have = facts.labels[key];
    if (have === undefined || !globMatch(value, have)) return false;
  }
  return true;
}

/** One rule against one request; `pending` when only facts known after resolution are missing. */
export function evaluate(rule: Rule, request: AccessRequest): RuleOutcome {
  const { target } = request;
  if (!anyGlobMatches(rule.namespaces, target.namespace)) return { kind: 'fail', stage: 'namespace' };
  let unknown = false;
  const place = placeMatches(rule, target.ref, podNameOf(request));
  if (place === 'no') return { kind: 'fail', stage: 'place' };
  if (place === 'unknown') unknown = true;
  if (rule.containers !== null) {
    if (request.container === null) unknown = true;
    else if (!anyGlobMatches(rule.containers, request.container)) return { kind: 'fail', stage: 'container' };
  }
  if (!rule[ACTION_CAPABILITY[request.action]]) return { kind: 'fail', stage: 'action' };
  if (request.action === 'port-forward' && !portAllowed(rule, request.port)) return { kind: 'fail', stage: 'port' };
  if (request.tty && !rule.tty) return { kind: 'fail', stage: 'tty' };
  return unknown ? { kind: 'pending' } : { kind: 'allow' };
}

/**
 * A pod login matches `pods` globs on the pod's name; `workloads` never match it (the bridge
 * does not look up who owns a pod: log in by the workload's name instead). A workload login
 * matches `workloads` on kind and name before resolution and, once its pod is known, `pods`
 * on that pod's name.
 */
function placeMatches(rule: Rule, ref: TargetRef, podName: string | undefined): 'yes' | 'no' | 'unknown' {
  if (rule.pods !== null && podName !== undefined && anyGlobMatches(rule.pods, podName)) return 'yes';
  if (ref.kind === 'pod') return 'no';
  if (rule.workloads !== null) {
    for (const w of rule.workloads) if ((w.kind === null || w.kind === ref.kind) && globMatch(w.name, ref.name)) return 'yes';
  }
  return rule.pods !== null && podName === undefined ? 'unknown' : 'no';
}

function podNameOf(request: AccessRequest): string | undefined {
  if (request.podName !== undefined) return request.podName;
  return request.target.ref.kind === 'pod' ? request.target.ref.name : undefined;
}

function portAllowed(rule: Rule, port: number | undefined): boolean {
  if (rule.ports === undefined || rule.ports === null) return true;
  return port !== undefined && rule.ports.some((r) => port >= r.low && port <= r.high);
}

function rank(outcome: RuleOutcome): number {
  if (outcome.kind === 'pending') return STAGES.length;
  if (outcome.kind === 'fail') return STAGES.indexOf(outcome.stage);
  return STAGES.length + 1;
}

const VERBS: Readonly<Record<Action, string>> = {
  shell: 'open a shell in',
  command: 'run commands in',
  'file-transfer': 'transfer files with',
  'port-forward': 'forward ports to',
  observe: 'observe terminals in',
};

function explain(stage: Stage, request: AccessRequest, applicable: readonly Rule[]): string {
  const { target } = request;
  const ns = target.namespace;
  const place = `${target.namespace}/${refText(target.ref)}`;
  switch (stage) {
    case 'namespace':
      return `no rule allows namespace ${q(ns)}`;
    case 'place': {
      if (target.ref.kind === 'pod') {
        const byWorkload = applicable.some((r) => r.pods === null && r.workloads !== null && anyGlobMatches(r.namespaces, ns));
        const hint = byWorkload ? '; rules that name workloads apply only when you log in by workload (KIND/NAME)' : '';
        return `no rule allows pod ${q(target.ref.name)} in namespace ${q(ns)}${hint}`;
      }
      const pod = request.podName === undefined ? '' : ` or its pod ${q(request.podName)}`;
      return `no rule allows ${target.ref.kind} ${q(target.ref.name)}${pod} in namespace ${q(ns)}`;
    }
    case 'container':
      return request.container === null
        ? `the rules for ${place} name their containers: name one in the login (+CONTAINER)`
        : `no rule allows container ${q(request.container)} in ${place}`;
    case 'action':
      return `no rule that reaches ${place} grants ${ACTION_CAPABILITY[request.action]}`;
    case 'port': {
      const allowed = applicable.filter((r) => r.portForwarding && r.ports).flatMap((r) => r.ports ?? []).slice(0, 8);
      const list = allowed.map((r) => (r.low === r.high ? String(r.low) : `${r.low}-${r.high}`)).join(', ');
      return `no rule that reaches ${place} allows port ${request.port ?? '?'}${list === '' ? '' : ` (ports allowed: ${list})`}`;
    }
    case 'tty':
      return `no rule that reaches ${place} grants tty (a terminal); without one: ssh -T`;
  }
}

/** `rules for alice: #1 team-a/* shell,tty; #3 {team-b,team-c}/deploy/web*+app commands` */
function summarize(name: string, rules: readonly Rule[]): string {
  const shown = rules.slice(0, 5).map((r) => {
    const ns = braces(r.namespaces.map((g) => g.source));
    const places = braces([...(r.pods ?? []).map((g) => g.source), ...(r.workloads ?? []).map((w) => w.source)]);
    const containers = r.containers === null ? '' : `+${braces(r.containers.map((g) => g.source))}`;
    const caps = (['shell', 'commands', 'fileTransfer', 'portForwarding', 'observe', 'tty'] as const).filter((c) => r[c]);
    return `#${r.number} ${clip(`${ns}/${places}${containers}`, 60)} ${caps.length > 0 ? caps.join(',') : 'nothing'}`;
  });
  const more = rules.length > 5 ? `; and ${rules.length - 5} more` : '';
  return `rules for ${clip(name, 40)}: ${shown.join('; ')}${more}`;
}

function braces(items: readonly string[]): string {
  return items.length === 1 ? (items[0] ?? '') : `{${items.join(',')}}`;
}

function describePlace(request: AccessRequest): string {
  const t = request.target;
  return `${t.namespace}/${refText(t.ref)}`;
}

function refText(ref: TargetRef): string {
  return ref.kind === 'pod' ? ref.name : `${ref.kind}/${ref.name}`;
}

function credential(identity: Identity): string {
  return identity.source.kind === 'key' ? 'key' : 'certificate';
}

function deny(reason: DenialReason, message: string): Decision & { allowed: false } {
  return { allowed: false, message: oneLine(message), reason, pending: false };
}

function requestProblem(r: AccessRequest): string | null {
  if (r === null || typeof r !== 'object' || r.target === null || typeof r.target !== 'object') return 'no request';
  if (typeof r.target.namespace !== 'string' || r.target.namespace === '') return 'the namespace was not resolved';
  if (r.target.ref === null || typeof r.target.ref !== 'object' || typeof r.target.ref.name !== 'string') return 'no pod or workload';
  if (typeof r.action !== 'string' || !Object.hasOwn(ACTION_CAPABILITY, r.action)) return `unknown action ${String(r.action)}`;
  return null;
}

/** Quoted for a message: printable ASCII only, so nothing can break the terminal or the log. */
function q(value: string): string {
  return JSON.stringify(clip(value, 80)).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function clip(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

function oneLine(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A policy file's text -> a Policy, or a PolicyError listing every problem at its file:line.
 * Order: YAML syntax, then the shape (schema.ts), then what needs the whole file: duplicate
 * names and keys, references to undeclared groups and identities, globs, key lines and options,
 * CA keys and revocations. Nothing half-valid is ever returned.
 */
import { createHash } from 'node:crypto';
import { parseKind, type WorkloadKind } from '../target.ts';
import { PolicyError, type IssuePath, type PolicyIssue } from './errors.ts';
import { compileGlob, globProblem, type Glob, type NameKind } from './glob.ts';
import { blobKey, parseKeyLine } from './key-line.ts';
import { checkShape, type PolicyFile, type PolicyFileRule } from './schema.ts';
import { closestWord } from '../words.ts';
import type { CertificateAuthority, DockerRule, Policy, PolicyIdentity, PolicyKey, Rule, WorkloadPattern, PortRange } from './types.ts';
import { issueAt, lineOf, readYaml, type YamlSource } from './yaml-source.ts';

const UINT64_MAX = (1n << 64n) - 1n;

export function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Throws PolicyError; `file` is how messages name the file (as the operator gave it). */
export function parsePolicy(text: string, file: string): Policy {
  const src = readYaml(text, file);
  if (src.syntaxIssues.length > 0) throw new PolicyError(file, src.syntaxIssues);
  const shape = checkShape(src.value);
  if (!shape.ok) throw new PolicyError(file, sortIssues(shape.issues.map((i) => issueAt(src, i.path, i.message, i.at))));
  const compiler = new Compiler(src);
  const policy = compiler.compile(shape.file, digestOf(text));
  if (compiler.issues.length > 0) throw new PolicyError(file, sortIssues(compiler.issues));
  return policy;
}

function sortIssues(issues: PolicyIssue[]): PolicyIssue[] {
  return issues.map((issue, i) => ({ issue, i })).sort((a, b) => a.issue.line - b.issue.line || a.i - b.i).map((x) => x.issue);
}

class Compiler {
  readonly issues: PolicyIssue[] = [];
  private readonly warnings: string[] = [];

  constructor(private readonly src: YamlSource) {}

  private problem(path: IssuePath, message: string): void {
    this.issues.push(issueAt(this.src, path, message));
  }

  private warn(path: IssuePath, message: string): void {
    const issue = issueAt(this.src, path, message);
    this.warnings.push(`${issue.file}:${issue.line}: ${message}`);
  }

  compile(f: PolicyFile, digest: string): Policy {
    const groups = this.groups(f);
    const { identities, keys, principals } = this.identities(f, groups);
    const certificateAuthorities = this.certificateAuthorities(f, keys);
    if (principals.size > 0 && certificateAuthorities.length === 0) {
      this.warn(['certificateAuthorities'], 'identities list principals but no certificateAuthorities are trusted: principals are unused');
    }
    const rules = (f.rules ?? []).map((r, i) => this.rule(r, i, identities, groups));
    return Object.freeze({
      kind: 'policy-file',
      file: this.src.file,
      digest,
      identities,
      keys,
      principals,
      certificateAuthorities: Object.freeze(certificateAuthorities),
      rules: Object.freeze(rules),
      warnings: Object.freeze([...this.warnings]),
    });
  }

  private groups(f: PolicyFile): Set<string> {
    const seen = new Map<string, number>();
    (f.groups ?? []).forEach((g, i) => {
      const first = seen.get(g.name);
      if (first !== undefined) this.problem(['groups', i, 'name'], `group "${g.name}" is already declared (groups[${first}])`);
      else seen.set(g.name, i);
    });
    return new Set(seen.keys());
  }

  private identities(f: PolicyFile, groups: Set<string>) {
    const identities = new Map<string, PolicyIdentity>();
    const keys = new Map<string, PolicyKey[]>();
    const keyWhere = new Map<string, string>();
    const principals = new Map<string, string>();
    const principalWhere = new Map<string, string>();
    const firstIndex = new Map<string, number>();

    (f.identities ?? []).forEach((id, i) => {
      const at: IssuePath = ['identities', i];
      const first = firstIndex.get(id.name);
      if (first !== undefined) {
        this.problem([...at, 'name'], `identity "${id.name}" is already defined (identities[${first}]); give each identity one entry`);
        return;
      }
      firstIndex.set(id.name, i);

      (id.groups ?? []).forEach((g, j) => {
        if (!groups.has(g)) this.problem([...at, 'groups', j], unknownRef('group', g, groups, 'declare it under groups'));
      });

      (id.keys ?? []).forEach((line, j) => {
        const path: IssuePath = [...at, 'keys', j];
        const parsed = parseKeyLine(line, 'user');
        if (!parsed.ok) return this.problem(path, parsed.problem);
        const k = blobKey(parsed.key.blob);
        const other = keyWhere.get(k);
        if (other !== undefined) {
          return this.problem(path, `key ${parsed.key.fingerprint} is already listed ${other}; a key belongs to one identity`);
        }
        keyWhere.set(k, `for identity "${id.name}" (identities[${i}].keys[${j}])`);
        const listedAt = `${this.src.file}:${lineOf(this.src, path)}`;
        keys.set(k, [Object.freeze({ identity: id.name, publicKey: parsed.key.key, fingerprint: parsed.key.fingerprint, comment: parsed.key.comment, options: parsed.key.options, listedAt })]);
      });

      (id.principals ?? []).forEach((p, j) => {
        const other = principalWhere.get(p);
        if (other !== undefined) return this.problem([...at, 'principals', j], `principal "${p}" already maps to ${other}; a principal selects one identity`);
        principalWhere.set(p, `identity "${id.name}" (identities[${i}].principals[${j}])`);
        principals.set(p, id.name);
      });

      if ((id.keys ?? []).length === 0 && (id.principals ?? []).length === 0) {
        this.warn([...at, 'name'], `identity "${id.name}" has no keys and no principals: nobody can log in as it`);
      }
      const kubeGroups = id.kubernetes?.groups ?? [];
      if (kubeGroups.includes('system:masters')) {
        this.warn([...at, 'kubernetes', 'groups'], `identity "${id.name}" impersonates group system:masters: a cluster-admin that no RBAC rule can restrict`);
      }
      identities.set(
        id.name,
        Object.freeze({
          name: id.name,
          kubernetes: Object.freeze({ user: id.kubernetes?.user ?? id.name, groups: Object.freeze([...kubeGroups]) }),
          groups: Object.freeze([...new Set(id.groups ?? [])]),
          principals: Object.freeze([...(id.principals ?? [])]),
        }),
      );
    });
    return { identities, keys, principals };
  }

  private certificateAuthorities(f: PolicyFile, userKeys: Map<string, PolicyKey[]>): CertificateAuthority[] {
    const out: CertificateAuthority[] = [];
    const seen = new Map<string, number>();
    const names = new Map<string, number>();
    (f.certificateAuthorities ?? []).forEach((ca, i) => {
      const at: IssuePath = ['certificateAuthorities', i];
      const parsed = parseKeyLine(ca.key, 'ca');
      if (!parsed.ok) return this.problem([...at, 'key'], parsed.problem);
      const k = blobKey(parsed.key.blob);
      const first = seen.get(k);
      if (first !== undefined) return this.problem([...at, 'key'], `CA key ${parsed.key.fingerprint} is already listed (certificateAuthorities[${first}])`);
      seen.set(k, i);
      if (userKeys.has(k)) {
        this.problem([...at, 'key'], `CA key ${parsed.key.fingerprint} is also listed as a user key; a CA key must only sign`);
      }
      const name = ca.name ?? parsed.key.comment ?? parsed.key.fingerprint;
      const firstName = names.get(name);
      if (ca.name !== undefined && firstName !== undefined) this.problem([...at, 'name'], `CA name "${name}" is already used (certificateAuthorities[${firstName}])`);
      names.set(name, i);
      const serials = new Set<string>();
      (ca.revoked?.serials ?? []).forEach((s, j) => {
        const serial = parseSerial(s);
        if (typeof serial === 'string') return this.problem([...at, 'revoked', 'serials', j], serial);
        serials.add(serial.toString());
      });
      out.push(
        Object.freeze({
          name,
          blob: parsed.key.blob,
          fingerprint: parsed.key.fingerprint,
          revokedSerials: serials,
          revokedKeyIds: new Set(ca.revoked?.keyIds ?? []),
        }),
      );
    });
    return out;
  }

  private rule(r: PolicyFileRule, i: number, identities: Map<string, PolicyIdentity>, groups: Set<string>): Rule {
    const at: IssuePath = ['rules', i];
    if ((r.identities ?? []).length === 0 && (r.groups ?? []).length === 0) {
      this.problem(at, 'a rule must name the identities and/or groups it applies to');
    }
    (r.identities ?? []).forEach((name, j) => {
      if (!identities.has(name)) this.problem([...at, 'identities', j], unknownRef('identity', name, identities.keys(), 'define it under identities'));
    });
    (r.groups ?? []).forEach((g, j) => {
      if (!groups.has(g)) this.problem([...at, 'groups', j], unknownRef('group', g, groups, 'declare it under groups'));
    });
    if (r.namespaces === undefined && r.docker === undefined) {
      this.problem(at, 'a rule must say where it applies: namespaces (Kubernetes) and/or docker (Docker containers)');
    } else if (r.namespaces !== undefined && r.pods === undefined && r.workloads === undefined) {
      this.problem(at, 'a rule must say which pods it reaches: give pods (e.g. ["*"]) and/or workloads (e.g. ["deploy/web"])');
    }
    return Object.freeze({
      number: i + 1,
      name: r.name ?? null,
      everyone: false,
      identities: new Set(r.identities ?? []),
      groups: new Set(r.groups ?? []),
      namespaces: this.globs(r.namespaces ?? [], [...at, 'namespaces'], 'namespace'),
      pods: r.pods === undefined ? null : this.globs(r.pods, [...at, 'pods'], 'pod'),
      workloads: r.workloads === undefined ? null : Object.freeze(r.workloads.map((w, j) => this.workload(w, [...at, 'workloads', j]))),
      containers: r.containers === undefined ? null : this.globs(r.containers, [...at, 'containers'], 'container'),
      docker: r.docker === undefined ? null : this.dockerRule(r.docker, [...at, 'docker']),
      // Secure by default: every capability must be granted in so many words.
      tty: r.tty ?? false,
      commands: r.commands ?? false,
      shell: r.shell ?? false,
      fileTransfer: r.fileTransfer ?? false,
      portForwarding: r.portForwarding ?? false,
      observe: r.observe ?? false,
      ports: r.ports === undefined ? null : this.ports(r.ports, [...at, 'ports']),
    });
  }

  private dockerRule(d: NonNullable<PolicyFileRule['docker']>, at: IssuePath): DockerRule {
    const opt = (list: readonly string[] | undefined, field: string) => (list === undefined ? null : this.globs(list, [...at, field], 'docker'));
    return Object.freeze({
      containers: opt(d.containers, 'containers'),
      projects: opt(d.projects, 'projects'),
      services: opt(d.services, 'services'),
      labels: Object.freeze(Object.entries(d.labels ?? {}).map(([key, value]) => ({ key, value: compileGlob(value) }))),
    });
  }

  private ports(items: ReadonlyArray<number | string>, path: IssuePath): readonly PortRange[] {
    return Object.freeze(
      items.map((item, j) => {
        const [low, high] = typeof item === 'number' ? [item, item] : item.split('-').map(Number) as [number, number];
        if (!(low >= 1 && high <= 65535 && low <= high)) this.problem([...path, j], `invalid port range ${JSON.stringify(item)}: LOW-HIGH with 1 <= LOW <= HIGH <= 65535`);
        return Object.freeze({ low, high });
      }),
    );
  }

  private globs(patterns: readonly string[], path: IssuePath, kind: NameKind): readonly Glob[] {
    return Object.freeze(
      patterns.map((p, j) => {
        const problem = globProblem(p, kind);
        if (problem !== null) this.problem([...path, j], `invalid glob ${JSON.stringify(p)}: it ${problem}`);
        return compileGlob(p);
      }),
    );
  }

  private workload(text: string, path: IssuePath): WorkloadPattern {
    const fallback: WorkloadPattern = { kind: null, name: compileGlob(''), source: text };
    const slash = text.indexOf('/');
    if (slash < 0) {
      this.problem(path, `invalid workload ${JSON.stringify(text)}: write KIND/NAME, e.g. deploy/${text || 'web'} (kinds: deploy, sts, ds, rs, job, or * for any)`);
      return fallback;
    }
    const kindWord = text.slice(0, slash);
    const nameGlob = text.slice(slash + 1);
    let kind: WorkloadKind | null = null;
    if (kindWord !== '*') {
      const k = parseKind(kindWord);
      if (k === 'pod') {
        this.problem(path, `invalid workload ${JSON.stringify(text)}: pods are not workloads; list pod name globs under pods`);
        return fallback;
      }
      if (k === null) {
        this.problem(path, `invalid workload ${JSON.stringify(text)}: unknown kind ${JSON.stringify(kindWord)} (kinds: deploy, sts, ds, rs, job or their long forms, or * for any)`);
        return fallback;
      }
      kind = k;
    }
    const problem = globProblem(nameGlob, 'workload');
    if (problem !== null) {
      this.problem(path, `invalid workload ${JSON.stringify(text)}: the name glob ${JSON.stringify(nameGlob)} ${problem}`);
      return fallback;
    }
    return Object.freeze({ kind, name: compileGlob(nameGlob), source: text });
  }
}

function unknownRef(what: string, name: string, known: Iterable<string>, fix: string): string {
  const near = closestWord(name, known);
  return `no ${what} named "${name}"${near ? ` (did you mean "${near}"?)` : ''}; ${fix}`;
}

/** Serials are uint64: YAML reads big unquoted numbers as (inexact) floats, so those must be quoted. */
function parseSerial(v: number | string): bigint | string {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) return `serial ${v} is not a non-negative integer`;
    if (!Number.isSafeInteger(v)) return `serial ${v} is too large to be read exactly from a YAML number: quote it ("...")`;
    return BigInt(v);
  }
  if (!/^\d{1,20}$/.test(v)) return `serial ${JSON.stringify(v)} is not a decimal number`;
  const n = BigInt(v);
  if (n > UINT64_MAX) return `serial ${v} is larger than a certificate serial can be (2^64-1)`;
  return n;
}

/**
 * The access policy: the file format and its errors, authorized_keys options with sshd's
 * meaning, key and principal resolution, and authorize() (default deny, globs, groups,
 * capabilities, workloads vs pods). Keys are real, made by ssh-keygen for this run.
 * Reloading is in policy-source.test.ts, the random-policy property in policy-property.test.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import {
  authorize,
  fromAuthorizedKeys,
  impersonationHeaders,
  parsePolicy,
  planSession,
  PolicyError,
  resolveKey,
  resolvePrincipals,
  type AccessRequest,
  type CertificateLogin,
  type Identity,
  type Policy,
} from '../../src/policy/index.ts';
import { globMatch, compileGlob, globProblem } from '../../src/policy/glob.ts';
import { addressAllowed, parseAddressPatterns } from '../../src/policy/address.ts';
import { parseExpiryTime, parseKeyOptions } from '../../src/policy/key-options.ts';
import type { TargetRef } from '../../src/target.ts';
import { parsePublicKey } from '../../src/openssh/public-key.ts';
import { REPO } from '../helpers/paths.ts';

// ---------------------------------------------------------------------------------------------
// Keys made by the real ssh-keygen

const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-policy-'));
after(() => fs.rmSync(keyDir, { recursive: true, force: true }));

interface TestKey {
  /** The private key file. */
  file: string;
  /** `ssh-ed25519 AAAA... comment` */
  line: string;
  blob: Buffer;
  fingerprint: string;
}

function keygen(comment: string, type = 'ed25519'): TestKey {
  const file = path.join(keyDir, `${comment.replace(/[^a-z0-9]/gi, '_')}-${type}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', comment, '-f', file]);
  const line = fs.readFileSync(`${file}.pub`, 'utf8').trim();
  const fingerprint = execFileSync('ssh-keygen', ['-lf', `${file}.pub`]).toString().split(' ')[1] ?? '';
  return { file, line, blob: Buffer.from(line.split(' ')[1] ?? '', 'base64'), fingerprint };
}

const alice = keygen('alice@laptop');
const aliceCi = keygen('alice@ci');
const bob = keygen('bob@laptop', 'rsa');
const carol = keygen('carol@laptop', 'ecdsa');
const ca = keygen('corp-ca');
const otherCa = keygen('other-ca');
const stranger = keygen('stranger');

const NOW = new Date('2026-06-01T12:00:00Z');

// ---------------------------------------------------------------------------------------------
// Helpers

function load(text: string, file = 'policy.yaml'): Policy {
  return parsePolicy(text, file);
}

function issuesOf(text: string, file = 'policy.yaml'): string[] {
  try {
    parsePolicy(text, file);
  } catch (err) {
    assert.ok(err instanceof PolicyError, `expected a PolicyError, got ${String(err)}`);
    assert.equal(err.message, err.issues.length > 25 ? err.message : err.issues.map((i) => `${i.file}:${i.line}: ${fieldOf(i.path)}${i.message}`).join('\n'));
    return err.message.split('\n');
  }
  assert.fail('expected the policy to be refused');
}

function fieldOf(p: ReadonlyArray<string | number>): string {
  if (p.length === 0) return '';
  return `${p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('')}: `;
}

function identityFor(policy: Policy, key: TestKey, address = '192.0.2.10'): Identity {
  const r = resolveKey(policy, key.blob, address, NOW);
  assert.ok(r.ok, `key should resolve: ${r.ok ? '' : r.refused}`);
  return r.identity;
}

function request(namespace: string, ref: string, more: Partial<AccessRequest> = {}): AccessRequest {
  const slash = ref.indexOf('/');
  const targetRef: TargetRef =
    slash < 0 ? { kind: 'pod', name: ref } : { kind: ({ deploy: 'deployment', sts: 'statefulset', ds: 'daemonset', rs: 'replicaset', job: 'job' } as const)[ref.slice(0, slash) as 'deploy'], name: ref.slice(slash + 1) };
  return { target: { raw: `${namespace}.${ref}`, namespace, ref: targetRef, container: null }, action: 'shell', tty: false, container: null, ...more };
}

/** A policy with alice (key) in group devs, and `rules` appended verbatim. */
function withRules(rules: string, extra = ''): Policy {
  return load(`version: 1
groups:
  - name: devs
  - name: ops
identities:
  - name: alice
    keys: ["${alice.line}"]
    groups: [devs]
  - name: bob
    keys: ["${bob.line}"]
    groups: [ops]
${extra}
rules:
${rules}
`);
}

const ALL = 'shell: true\n    commands: true\n    tty: true\n    fileTransfer: true\n    portForwarding: true';

// ---------------------------------------------------------------------------------------------

describe('policy file: loading', () => {
  it('loads the documented example (examples/policy.yaml)', () => {
    const file = path.join(REPO, 'examples/policy.yaml');
    const policy = parsePolicy(fs.readFileSync(file, 'utf8'), 'examples/policy.yaml');
    assert.equal(policy.kind, 'policy-file');
    assert.deepEqual([...policy.identities.keys()], ['alice', 'bob', 'backup-bot']);
    assert.equal(policy.rules.length, 4);
    assert.equal(policy.certificateAuthorities.length, 1);
    assert.deepEqual([...policy.certificateAuthorities[0]!.revokedSerials], ['17', '18446744073709551615']);
    assert.deepEqual(policy.warnings, []);
  });

  it('fills defaults: kubernetes user = identity name, no groups, every capability false', () => {
    const policy = load(`version: 1
identities:
  - name: dave@example.com
    keys: ["${alice.line}"]
rules:
  - identities: [dave@example.com]
    namespaces: [team-a]
    pods: ["*"]
`);
    const dave = policy.identities.get('dave@example.com')!;
    assert.deepEqual(dave.kubernetes, { user: 'dave@example.com', groups: [] });
    const rule = policy.rules[0]!;
    assert.deepEqual([rule.tty, rule.commands, rule.shell, rule.fileTransfer, rule.portForwarding], [false, false, false, false, false]);
    assert.equal(rule.containers, null);
    assert.equal(rule.workloads, null);
  });

  it('an empty rule list is valid and allows nothing', () => {
    const policy = load(`version: 1\nidentities:\n  - name: alice\n    keys: ["${alice.line}"]\nrules: []\n`);
    const d = authorize(policy, identityFor(policy, alice), request('team-a', 'web-1'));
    assert.equal(d.allowed, false);
    assert.match(d.allowed ? '' : d.message, /no rule applies to identity "alice"$/);
  });
});

describe('policy file: every error names file, line and field', () => {
  it('YAML syntax errors', () => {
    assert.deepEqual(issuesOf('version: 1\nrules: [\n  - a\n', 'p.yaml').length > 0, true);
    const [first] = issuesOf('version: 1\nidentities:\n  - name: a\n   keys: []\n', 'p.yaml');
    assert.match(first!, /^p\.yaml:4: YAML: /);
  });

  it('duplicate YAML keys are errors, not "last one wins"', () => {
    const lines = issuesOf(`version: 1
rules:
  - identities: [x]
    namespaces: [a]
    pods: ["*"]
    shell: false
    shell: true
`);
    assert.match(lines[0]!, /^policy\.yaml:7: YAML: Map keys must be unique/);
  });

  it('an empty file, a list, a wrong version', () => {
    assert.deepEqual(issuesOf(''), ['policy.yaml:1: the file is empty: a policy starts with "version: 1" (see docs/policy.md)']);
    assert.deepEqual(issuesOf('- a\n'), ['policy.yaml:1: a policy file is a mapping that starts with "version: 1" (see docs/policy.md)']);
    assert.deepEqual(issuesOf('rules: []\n'), ['policy.yaml:1: version: must be 1 (the only version of this format)']);
    assert.deepEqual(issuesOf('version: 2\n'), ['policy.yaml:1: version: must be 1 (the only version of this format)']);
  });

  it('shape errors: unknown fields (with a suggestion), wrong types, missing fields, empty lists', () => {
    assert.deepEqual(
      issuesOf(`version: 1
identities:
  - name: alice
    key: ["${alice.line}"]
rules:
  - identities: [alice]
    namespaces: [team-a, 7]
    pods: []
    shell: "yes"
    tyy: true
  - identities: [alice]
    pods: ["*"]
`),
      [
        'policy.yaml:4: identities[0].key: unknown field (did you mean "keys"?); fields here: name, description, keys, principals, kubernetes, groups',
        'policy.yaml:7: rules[0].namespaces[1]: expected a string, got number 7: quote it ("7")',
        'policy.yaml:8: rules[0].pods: must not be an empty list',
        'policy.yaml:9: rules[0].shell: expected true or false, got the string "yes"',
        'policy.yaml:10: rules[0].tyy: unknown field (did you mean "tty"?); fields here: name, description, identities, groups, namespaces, pods, workloads, containers, tty, commands, shell, fileTransfer, portForwarding, observe, ports, docker',
        'policy.yaml:11: rules[1].namespaces: is required (or docker, for a rule about Docker containers)',
      ],
    );
  });

  it('names must be usable in logs and headers', () => {
    const lines = issuesOf(`version: 1
identities:
  - name: "alice smith"
    kubernetes: { user: "al\\nice" }
`);
    assert.match(lines[0]!, /^policy\.yaml:3: identities\[0\]\.name: must be letters, digits/);
    assert.match(lines[1]!, /^policy\.yaml:4: identities\[0\]\.kubernetes\.user: a Kubernetes user name must be printable ASCII$/);
  });

  it('duplicate identity names, a key under two identities, duplicate principals and groups', () => {
    assert.deepEqual(
      issuesOf(`version: 1
groups:
  - name: devs
  - name: devs
identities:
  - name: alice
    keys: ["${alice.line}"]
    principals: [alice]
  - name: alice
  - name: bob
    keys:
      - ${bob.line}
      - no-pty ${alice.line}
    principals: [alice]
`),
      [
        'policy.yaml:4: groups[1].name: group "devs" is already declared (groups[0])',
        'policy.yaml:9: identities[1].name: identity "alice" is already defined (identities[0]); give each identity one entry',
        `policy.yaml:13: identities[2].keys[1]: key ${alice.fingerprint} is already listed for identity "alice" (identities[0].keys[0]); a key belongs to one identity`,
        'policy.yaml:14: identities[2].principals[0]: principal "alice" already maps to identity "alice" (identities[0].principals[0]); a principal selects one identity',
      ],
    );
  });

  it('unknown groups and identities, with "did you mean"', () => {
    assert.deepEqual(
      issuesOf(`version: 1
groups:
  - name: team-a-devs
identities:
  - name: alice
    keys: ["${alice.line}"]
    groups: [team-a-dev]
rules:
  - identities: [alcie]
    groups: [sre]
    namespaces: [a]
    pods: ["*"]
`),
      [
        'policy.yaml:7: identities[0].groups[0]: no group named "team-a-dev" (did you mean "team-a-devs"?); declare it under groups',
        'policy.yaml:9: rules[0].identities[0]: no identity named "alcie" (did you mean "alice"?); define it under identities',
        'policy.yaml:10: rules[0].groups[0]: no group named "sre"; declare it under groups',
      ],
    );
  });

  it('invalid globs and workload patterns', () => {
    assert.deepEqual(
      issuesOf(`version: 1
identities:
  - name: alice
rules:
  - identities: [alice]
    namespaces: [Team-*, "", team_a]
    pods: ["web/1"]
    containers: [app.v2]
    workloads:
      - web
      - pod/web
      - deplyo/web
      - deploy/Web
      - "*/web-*"
      - sts/db
`),
      [
        `policy.yaml:6: rules[0].namespaces[0]: invalid glob "Team-*": it has uppercase 'T': a namespace glob is lowercase letters, digits and '-', with '*' and '?' as wildcards`,
        'policy.yaml:6: rules[0].namespaces[1]: invalid glob "": it is empty (use "*" for any name)',
        `policy.yaml:6: rules[0].namespaces[2]: invalid glob "team_a": it has '_' (use '-'): a namespace glob is lowercase letters, digits and '-', with '*' and '?' as wildcards`,
        `policy.yaml:7: rules[0].pods[0]: invalid glob "web/1": it has '/': a pod glob is lowercase letters, digits, '-' and '.', with '*' and '?' as wildcards`,
        `policy.yaml:8: rules[0].containers[0]: invalid glob "app.v2": it has '.': a container glob is lowercase letters, digits and '-', with '*' and '?' as wildcards`,
        'policy.yaml:10: rules[0].workloads[0]: invalid workload "web": write KIND/NAME, e.g. deploy/web (kinds: deploy, sts, ds, rs, job, or * for any)',
        'policy.yaml:11: rules[0].workloads[1]: invalid workload "pod/web": pods are not workloads; list pod name globs under pods',
        'policy.yaml:12: rules[0].workloads[2]: invalid workload "deplyo/web": unknown kind "deplyo" (kinds: deploy, sts, ds, rs, job or their long forms, or * for any)',
        `policy.yaml:13: rules[0].workloads[3]: invalid workload "deploy/Web": the name glob "Web" has uppercase 'W': a workload glob is lowercase letters, digits, '-' and '.', with '*' and '?' as wildcards`,
      ],
    );
  });

  it('a rule must name who it applies to and which pods it reaches', () => {
    assert.deepEqual(
      issuesOf(`version: 1
rules:
  - namespaces: [a]
    shell: true
`),
      [
        'policy.yaml:3: rules[0]: a rule must name the identities and/or groups it applies to',
        'policy.yaml:3: rules[0]: a rule must say which pods it reaches: give pods (e.g. ["*"]) and/or workloads (e.g. ["deploy/web"])',
      ],
    );
  });

  it('invalid key lines and key options, each at its own line', () => {
    const lines = issuesOf(`version: 1
identities:
  - name: alice
    keys:
      - garbage
      - ssh-ed25519 AAAA!!!
      - ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t alice
      - cert-authority ${ca.line}
      - permitlisten="8080" ${alice.line}
      - environment="A=b" ${alice.line}
      - verify-required ${alice.line}
      - frobnicate ${alice.line}
      - command="a",command="b" ${alice.line}
      - from="10.0.0.1",from="10.0.0.2" ${alice.line}
      - from="*.example.com" ${alice.line}
      - from="10.1.2.3/8" ${alice.line}
      - expiry-time="20260230" ${alice.line}
      - no-pty=yes ${alice.line}
      - |
        ${alice.line}
        ${aliceCi.line}
`);
    const at = (n: number) => lines.find((l) => l.startsWith(`policy.yaml:${n}: `)) ?? `(nothing at line ${n})`;
    assert.match(at(5), /keys\[0\]: is not a valid key line: no key type found/);
    assert.match(at(6), /keys\[1\]: is not a valid key line: cannot parse the ssh-ed25519 key/);
    assert.match(at(7), /keys\[2\]: is a certificate, not a public key: trust its CA under certificateAuthorities/);
    assert.match(at(8), /keys\[3\]: has the cert-authority option: list CA keys under certificateAuthorities/);
    assert.match(at(9), /keys\[4\]: "permitlisten" is not supported: remote forwarding \(ssh -R\) is not offered/);
    assert.match(at(10), /keys\[5\]: "environment" is not supported/);
    assert.match(at(11), /keys\[6\]: "verify-required" is not supported/);
    assert.match(at(12), /keys\[7\]: unknown option "frobnicate"/);
    assert.match(at(13), /keys\[8\]: multiple "command" options/);
    assert.match(at(14), /keys\[9\]: multiple "from" options/);
    assert.match(at(15), /keys\[10\]: from=: "\*\.example\.com" is a host name pattern: podbridge never looks names up/);
    assert.match(at(16), /keys\[11\]: from=: "10\.1\.2\.3\/8" has host bits set after \/8 \(did you mean 10\.0\.0\.0\/8\?\)/);
    assert.match(at(17), /keys\[12\]: expiry-time="20260230": day 30 does not exist in that month/);
    assert.match(at(18), /keys\[13\]: option "no-pty" takes no value/);
    assert.match(at(19), /keys\[14\]: holds more than one line: give one key per list entry/);
    assert.equal(lines.length, 15);
  });

  it('certificate authorities: bad keys, options, duplicates, serials', () => {
    assert.deepEqual(
      issuesOf(`version: 1
identities:
  - name: alice
    keys: ["${alice.line}"]
certificateAuthorities:
  - key: ${ca.line}
    revoked:
      serials: [1, 18446744073709551615, "18446744073709551616", -3, "0x10"]
  - key: ${ca.line}
  - key: no-pty ${otherCa.line}
  - key: ${alice.line}
`),
      [
        'policy.yaml:8: certificateAuthorities[0].revoked.serials[1]: serial 18446744073709552000 is too large to be read exactly from a YAML number: quote it ("...")',
        'policy.yaml:8: certificateAuthorities[0].revoked.serials[2]: serial 18446744073709551616 is larger than a certificate serial can be (2^64-1)',
        'policy.yaml:8: certificateAuthorities[0].revoked.serials[3]: serial -3 is not a non-negative integer',
        'policy.yaml:8: certificateAuthorities[0].revoked.serials[4]: serial "0x10" is not a decimal number',
        `policy.yaml:9: certificateAuthorities[1].key: CA key ${ca.fingerprint} is already listed (certificateAuthorities[0])`,
        'policy.yaml:10: certificateAuthorities[2].key: a CA key takes no options: give just "TYPE BASE64 [comment]"',
        `policy.yaml:11: certificateAuthorities[3].key: CA key ${alice.fingerprint} is also listed as a user key; a CA key must only sign`,
      ],
    );
  });

  it('all problems of a kind are reported together, in line order, and the error message is all of them', () => {
    const text = `version: 1\nrules:\n${Array.from({ length: 30 }, (_, i) => `  - identities: [nobody${i}]\n    namespaces: [a]\n    pods: ["*"]\n`).join('')}`;
    try {
      parsePolicy(text, '/etc/podbridge/policy.yaml');
      assert.fail('should not load');
    } catch (err) {
      assert.ok(err instanceof PolicyError);
      assert.equal(err.issues.length, 30);
      assert.deepEqual(err.issues.map((i) => i.line), Array.from({ length: 30 }, (_, i) => 3 + 3 * i));
      const lines = err.message.split('\n');
      assert.equal(lines.length, 26);
      assert.equal(lines[0], '/etc/podbridge/policy.yaml:3: rules[0].identities[0]: no identity named "nobody0"; define it under identities');
      assert.equal(lines[25], '... and 5 more problems');
    }
  });

  it('warnings do not stop the load: identities nobody can use, principals without a CA, system:masters', () => {
    const policy = load(`version: 1
identities:
  - name: ghost
  - name: bob
    principals: [bob]
    kubernetes: { groups: ["system:masters"] }
`);
    assert.deepEqual(policy.warnings, [
      'policy.yaml:3: identity "ghost" has no keys and no principals: nobody can log in as it',
      'policy.yaml:6: identity "bob" impersonates group system:masters: a cluster-admin that no RBAC rule can restrict',
      'policy.yaml:1: identities list principals but no certificateAuthorities are trusted: principals are unused',
    ]);
  });
});

describe('authorized_keys options (sshd semantics)', () => {
  function opts(...raw: string[]) {
    const r = parseKeyOptions(raw);
    assert.ok(r.ok, r.ok ? '' : r.problem);
    return r.options;
  }

  it('no options: terminal and port forwarding permitted, no forced command, no restriction', () => {
    assert.deepEqual({ ...opts() }, { from: null, fromPatterns: null, expiresAt: null, forcedCommand: null, pty: true, portForwarding: true, permitOpen: null, restricted: false });
  });

  it('no-pty, no-port-forwarding, command=, and names ignoring case', () => {
    const o = opts('No-Pty', 'NO-PORT-FORWARDING', 'Command=echo "hi, there"');
    assert.equal(o.pty, false);
    assert.equal(o.portForwarding, false);
    assert.equal(o.forcedCommand, 'echo "hi, there"');
  });

  it('restrict turns everything off; pty / port-forwarding AFTER restrict turn it back on; order matters', () => {
    assert.deepEqual([opts('restrict').pty, opts('restrict').portForwarding, opts('restrict').restricted], [false, false, true]);
    assert.deepEqual([opts('restrict', 'pty').pty, opts('restrict', 'pty').portForwarding], [true, false]);
    assert.deepEqual([opts('restrict', 'port-forwarding').pty, opts('restrict', 'port-forwarding').portForwarding], [false, true]);
    assert.equal(opts('pty', 'restrict').pty, false, 'restrict after pty wins, as in sshd');
    assert.equal(opts('no-pty', 'pty').pty, true);
  });

  it('options for features the bridge never offers are accepted and change nothing', () => {
    const o = opts('no-agent-forwarding', 'no-X11-forwarding', 'no-user-rc', 'agent-forwarding', 'x11-forwarding', 'user-rc', 'tunnel=0', 'no-touch-required');
    assert.deepEqual([o.pty, o.portForwarding], [true, true]);
  });

  it('expiry-time: YYYYMMDD[HHMM[SS]], local time unless Z/UTC, earliest wins, refused dates', () => {
    assert.equal(parseExpiryTime('20300102030405Z'), Date.UTC(2030, 0, 2, 3, 4, 5) / 1000);
    assert.equal(parseExpiryTime('203001020304UTC'), Date.UTC(2030, 0, 2, 3, 4, 0) / 1000);
    assert.equal(parseExpiryTime('20300102z'), Date.UTC(2030, 0, 2) / 1000);
    const savedTz = process.env.TZ;
    try {
      process.env.TZ = 'America/New_York';
      assert.equal(parseExpiryTime('20300102030405'), Date.UTC(2030, 0, 2, 8, 4, 5) / 1000, 'local time is the bridge TZ (UTC-5 in January)');
      process.env.TZ = 'UTC';
      assert.equal(parseExpiryTime('20300102030405'), Date.UTC(2030, 0, 2, 3, 4, 5) / 1000);
    } finally {
      if (savedTz === undefined) delete process.env.TZ;
      else process.env.TZ = savedTz;
    }
    assert.equal(opts('expiry-time=20300101Z', 'expiry-time=20290101Z').expiresAt, Date.UTC(2029, 0, 1) / 1000);
    assert.match(String(parseExpiryTime('2030010')), /expected YYYYMMDD/);
    assert.match(String(parseExpiryTime('20301301')), /month 13 does not exist/);
    assert.match(String(parseExpiryTime('20290229')), /day 29 does not exist/);
    assert.equal(typeof parseExpiryTime('20280229Z'), 'number', 'a leap day exists in 2028');
    assert.match(String(parseExpiryTime('203001012400')), /time of day/);
    assert.match(String(parseExpiryTime('19690101Z')), /before 1970/);
  });

  it('from=: addresses, CIDR, negation, wildcards, IPv6 and IPv4-mapped clients', () => {
    const allowed = (list: string, address: string) => {
      const p = parseAddressPatterns(list);
      assert.ok(p.ok, p.ok ? '' : p.problem);
      return addressAllowed(p.patterns, address);
    };
    assert.equal(allowed('10.0.0.0/8', '10.200.3.4'), true);
    assert.equal(allowed('10.0.0.0/8', '11.0.0.1'), false);
    assert.equal(allowed('10.0.0.0/8', '::ffff:10.1.1.1'), true, 'dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d');
    assert.equal(allowed('192.0.2.7', '192.0.2.7'), true);
    assert.equal(allowed('192.0.2.7', '192.0.2.8'), false);
    assert.equal(allowed('10.0.0.0/8,!10.9.0.0/16', '10.9.1.1'), false, 'a negated match refuses even when another pattern matches');
    assert.equal(allowed('!10.9.0.0/16,10.0.0.0/8', '10.9.1.1'), false, 'whatever the order');
    assert.equal(allowed('10.0.0.0/8,!10.9.0.0/16', '10.8.1.1'), true);
    assert.equal(allowed('!10.9.0.0/16', '10.8.1.1'), false, 'negation alone allows nothing (sshd needs one positive match)');
    assert.equal(allowed('192.168.1.*', '192.168.1.77'), true);
    assert.equal(allowed('192.168.1.?', '192.168.1.77'), false);
    assert.equal(allowed('2001:db8::/32', '2001:db8:1::5'), true);
    assert.equal(allowed('2001:db8::/32', '2001:db9::5'), false);
    assert.equal(allowed('2001:DB8::1', '2001:db8:0:0:0:0:0:1'), true);
    assert.equal(allowed('fe80::/10', 'fe80::1%eth0'), true, "a client's zone id is not compared (as for source-address)");
    assert.equal(allowed('10.0.0.0/8', 'not-an-address'), false);
    assert.equal(allowed('0.0.0.0/0', '203.0.113.9'), true);
    assert.equal(allowed('0.0.0.0/0', '2001:db8::1'), false, 'IPv4 networks never match IPv6 clients');
    for (const [bad, why] of [
      ['host.example.com', /host name pattern/],
      ['10.0.0.0/33', /prefix length must be 0 to 32/],
      ['10.0.0.1/24', /host bits set/],
      ['10.0.0.0/x', /invalid prefix length/],
      ['10.0.0.0,,10.0.0.1', /empty pattern/],
      ['!', /empty pattern/],
      ['fe80::1%eth0', /zone id/],
      [' 10.0.0.1 , 10.0.0.2', /has spaces around it/],
      ['::ffff:10.0.0.0/104', /IPv4-mapped IPv6 network, which sshd never matches .*write it as 10\.0\.0\.0\/8/],
    ] as const) {
      const p = parseAddressPatterns(bad);
      assert.equal(p.ok, false, bad);
      assert.match(p.ok ? '' : p.problem, why);
    }
  });
});

describe('resolveKey', () => {
  const policy = load(`version: 1
identities:
  - name: alice
    keys:
      - ${alice.line}
      - from="10.20.0.0/16,!10.20.99.0/24",expiry-time="20261231235959Z",no-port-forwarding ${aliceCi.line}
    kubernetes: { user: alice@example.com, groups: [team-a-devs] }
  - name: bot
    keys:
      - restrict,command="tar -cf - /data" ${bob.line}
`);

  it('a key in the policy gives its identity, with what the key line permits', () => {
    const r = resolveKey(policy, alice.blob, '192.0.2.1', NOW);
    assert.ok(r.ok);
    assert.deepEqual(r.identity, {
      name: 'alice',
      keyFingerprint: alice.fingerprint,
      keyComment: 'alice@laptop',
      kubernetes: { user: 'alice@example.com', groups: ['team-a-devs'] },
      groups: [],
      source: { kind: 'key', listedAt: 'policy.yaml:5' },
      forcedCommand: null,
      permits: { pty: true, portForwarding: true, permitOpen: null },
    });
    assert.ok(Object.isFrozen(r.identity) && Object.isFrozen(r.identity.permits), 'a session holds it for its whole life: nobody may change it');
  });

  it("gives the key that verifies the client's signature", () => {
    const r = resolveKey(policy, alice.blob, '192.0.2.1', NOW);
    assert.ok(r.ok);
    const privateKey = parsePublicKey(fs.readFileSync(alice.file));
    assert.ok(privateKey !== null && privateKey.isPrivateKey());
    const data = Buffer.from('session id and userauth request');
    assert.equal(r.publicKey.verify(data, privateKey.sign(data)), true);
    const other = parsePublicKey(fs.readFileSync(aliceCi.file))!;
    assert.equal(r.publicKey.verify(data, other.sign(data)), false);
  });

  it('an unknown key is refused with nothing to tell a scanner', () => {
    const r = resolveKey(policy, stranger.blob, '192.0.2.1', NOW);
    assert.deepEqual(r, { ok: false, code: 'unknown-key', refused: 'key not in policy.yaml' });
  });

  it('from= and expiry-time= mismatches are refusals with a reason for the log', () => {
    const wrongNet = resolveKey(policy, aliceCi.blob, '10.20.99.5', NOW);
    assert.deepEqual(wrongNet, {
      ok: false,
      code: 'source-address',
      refused: 'source address 10.20.99.5 is not allowed by from="10.20.0.0/16,!10.20.99.0/24" (identity "alice", policy.yaml:6)',
    });
    const ok = resolveKey(policy, aliceCi.blob, '10.20.1.5', NOW);
    assert.ok(ok.ok);
    assert.deepEqual(ok.identity.permits, { pty: true, portForwarding: false, permitOpen: null });
    assert.ok(resolveKey(policy, aliceCi.blob, '10.20.1.5', new Date('2026-12-31T23:59:59.999Z')).ok, 'the named second is still valid');
    const late = resolveKey(policy, aliceCi.blob, '10.20.1.5', new Date('2027-01-01T00:00:00Z'));
    assert.deepEqual(late, { ok: false, code: 'expired', refused: 'key expired at 2026-12-31T23:59:59.000Z (expiry-time) (identity "alice", policy.yaml:6)' });
  });

  it('impersonation headers carry the Kubernetes user and groups', () => {
    assert.deepEqual(impersonationHeaders(identityFor(policy, alice)), { 'Impersonate-User': 'alice@example.com', 'Impersonate-Group': ['team-a-devs'] });
    assert.deepEqual(impersonationHeaders(identityFor(policy, bob)), { 'Impersonate-User': 'bot' });
    assert.deepEqual(impersonationHeaders(identityFor(fromAuthorizedKeys(alice.line), alice)), {}, 'authorized_keys mode: the bridge acts as itself');
  });

  it('restrict and command= reach the identity', () => {
    const r = resolveKey(policy, bob.blob, '192.0.2.1', NOW);
    assert.ok(r.ok);
    assert.equal(r.identity.forcedCommand, 'tar -cf - /data');
    assert.deepEqual(r.identity.permits, { pty: false, portForwarding: false, permitOpen: null });
    assert.equal(r.keyOptions.restricted, true);
  });
});

describe('fromAuthorizedKeys: the plain file as the simplest policy', () => {
  const text = [
    '# team keys',
    alice.line,
    `from="10.0.0.0/8",no-pty ${bob.line}`,
    `from="192.168.0.0/16" ${bob.line}`,
    carol.line.replace(/ [^ ]+$/, ''),
    `permitlisten="8080" ${aliceCi.line}`,
    'garbage',
  ].join('\n');
  const policy = fromAuthorizedKeys(text, '/home/u/.ssh/authorized_keys');

  it('every key is an identity named by its comment, else its fingerprint, acting as the bridge itself', () => {
    assert.equal(policy.kind, 'authorized-keys');
    const a = identityFor(policy, alice);
    assert.equal(a.name, 'alice@laptop');
    assert.equal(a.kubernetes, null, 'no impersonation: the bridge acts with its own credentials');
    assert.deepEqual(a.source, { kind: 'key', listedAt: '/home/u/.ssh/authorized_keys:2' });
    assert.equal(identityFor(policy, carol).name, carol.fingerprint, 'a key without a comment is named by its fingerprint');
  });

  it('every identity may do everything, everywhere, subject to its key options', () => {
    const a = identityFor(policy, alice);
    for (const action of ['shell', 'command', 'file-transfer', 'port-forward'] as const) {
      assert.equal(authorize(policy, a, request('kube-system', 'deploy/coredns', { action, tty: action === 'shell', container: 'x' })).allowed, true, action);
    }
    const b = identityFor(policy, bob, '10.1.1.1');
    const d = authorize(policy, b, request('team-a', 'web-1', { tty: true }));
    assert.equal(d.allowed, false);
    assert.match(d.allowed ? '' : d.message, /its key does not permit a terminal \(no-pty or restrict\); try ssh -T$/);
  });

  it('a key on several lines: each line is tried in order, as sshd does', () => {
    assert.equal(identityFor(policy, bob, '10.1.1.1').permits.pty, false);
    assert.equal(identityFor(policy, bob, '192.168.3.3').permits.pty, true, 'the second line admits it from its own network');
    const r = resolveKey(policy, bob.blob, '172.16.0.1', NOW);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.refused, /^source address 172\.16\.0\.1 is not allowed by from="10\.0\.0\.0\/8"/);
  });

  it('unusable lines, and lines with options the bridge cannot honour, are skipped with a warning', () => {
    assert.equal(resolveKey(policy, aliceCi.blob, '10.0.0.1', NOW).ok, false, 'permitlisten= cannot be honoured: the key is not let in with more than its line says');
    assert.deepEqual(policy.warnings, [
      '/home/u/.ssh/authorized_keys:7: no key type found',
      `/home/u/.ssh/authorized_keys:6: "permitlisten" is not supported: remote forwarding (ssh -R) is not offered by the bridge; key ${aliceCi.fingerprint} ignored`,
    ]);
  });

  it('an empty file lets nobody in', () => {
    const empty = fromAuthorizedKeys('');
    assert.equal(resolveKey(empty, alice.blob, '127.0.0.1', NOW).ok, false);
  });
});

describe('globs', () => {
  const cases: Array<[string, string, boolean]> = [
    ['team-a', 'team-a', true],
    ['team-a', 'team-ab', false],
    ['team-*', 'team-a', true],
    ['team-*', 'team-', true],
    ['team-*', 'team', false],
    ['*', '', true],
    ['*', 'anything.at.all', true],
    ['web-?', 'web-1', true],
    ['web-?', 'web-12', false],
    ['*-canary', 'web-canary', true],
    ['*-canary', 'web-canary-2', false],
    ['a*b*c', 'a-x-b-y-c', true],
    ['a*b*c', 'a-x-c-y-b', false],
    ['*.*', 'web.v2', true],
    ['*.*', 'web', false],
    ['db-*-?', 'db-east-1', true],
    ['**', 'x', true],
  ];
  for (const [pattern, name, expected] of cases) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(name)}`, () => {
      assert.equal(globMatch(compileGlob(pattern), name), expected);
    });
  }
  it('stays fast on patterns built to make backtracking matchers explode', () => {
    const started = process.hrtime.bigint();
    assert.equal(globMatch(compileGlob(`${'a*'.repeat(60)}b`), 'a'.repeat(253)), false);
    assert.ok(process.hrtime.bigint() - started < 200_000_000n);
  });
  it('refuses characters a name of that kind cannot have', () => {
    assert.equal(globProblem('web.v2-*', 'pod'), null);
    assert.match(globProblem('web.v2-*', 'namespace') ?? '', /has '\.'/);
    assert.match(globProblem('[ab]', 'pod') ?? '', /has '\['/);
  });
});

describe('authorize', () => {
  it('default deny: nothing is allowed without a rule, and the message says so', () => {
    const policy = withRules('  - identities: [bob]\n    namespaces: ["*"]\n    pods: ["*"]\n    shell: true');
    const d = authorize(policy, identityFor(policy, alice), request('team-a', 'web-1'));
    assert.deepEqual(d, {
      allowed: false,
      message: 'identity "alice" may not open a shell in team-a/web-1: no rule applies to identity "alice"',
      reason: 'no-rules',
      pending: false,
    });
  });

  it('the message names the identity, what was missing and the rules that apply to it, on one line', () => {
    const policy = withRules(`  - identities: [alice]
    namespaces: [team-a]
    pods: ["*"]
    shell: true`);
    const d = authorize(policy, identityFor(policy, alice), request('team-b', 'web-1'));
    assert.deepEqual(d, {
      allowed: false,
      message: 'identity "alice" may not open a shell in team-b/web-1: no rule allows namespace "team-b" (rules for alice: #1 team-a/* shell)',
      reason: 'namespace',
      rule: 1,
      pending: false,
    });
    assert.deepEqual(authorize(policy, identityFor(policy, alice), request('team-a', 'web-1')), { allowed: true, rule: 1 });
  });

  it('namespace and pod globs', () => {
    const policy = withRules(`  - identities: [alice]
    namespaces: [team-*, staging]
    pods: [web-*, api-?]
    shell: true`);
    const id = identityFor(policy, alice);
    assert.equal(authorize(policy, id, request('team-a', 'web-7d9f')).allowed, true);
    assert.equal(authorize(policy, id, request('staging', 'api-1')).allowed, true);
    const d = authorize(policy, id, request('team-a', 'db-0'));
    assert.equal(d.allowed, false);
    assert.match(d.allowed ? '' : d.message, /: no rule allows pod "db-0" in namespace "team-a" \(rules for alice: #1 \{team-\*,staging\}\/\{web-\*,api-\?\} shell\)$/);
    assert.equal(authorize(policy, id, request('production', 'web-1')).allowed, false);
  });

  it('every capability flag is needed for its action, and tty for a terminal', () => {
    for (const [flag, action] of [
      ['shell', 'shell'],
      ['commands', 'command'],
      ['fileTransfer', 'file-transfer'],
      ['portForwarding', 'port-forward'],
    ] as const) {
      const only = withRules(`  - identities: [alice]\n    namespaces: [a]\n    pods: ["*"]\n    ${flag}: true`);
      const id = identityFor(only, alice);
      for (const other of ['shell', 'command', 'file-transfer', 'port-forward'] as const) {
        const d = authorize(only, id, request('a', 'p', { action: other }));
        assert.equal(d.allowed, other === action, `${flag}: true and action ${other}`);
        if (!d.allowed) {
          assert.equal(d.reason, 'action');
          assert.match(d.message, new RegExp(`grants ${({ shell: 'shell', command: 'commands', 'file-transfer': 'fileTransfer', 'port-forward': 'portForwarding' } as const)[other]} `));
        }
      }
      const d = authorize(only, id, request('a', 'p', { action, tty: true }));
      assert.equal(d.allowed, false, `${flag} without tty: no terminal`);
      assert.equal(d.allowed ? '' : d.reason, 'tty');
      assert.match(d.allowed ? '' : d.message, /grants tty \(a terminal\); without one: ssh -T/);
      const withTty = withRules(`  - identities: [alice]\n    namespaces: [a]\n    pods: ["*"]\n    ${flag}: true\n    tty: true`);
      assert.equal(authorize(withTty, identityFor(withTty, alice), request('a', 'p', { action, tty: true })).allowed, true);
    }
  });

  it('a rule allowing everything at once', () => {
    const policy = withRules(`  - identities: [alice]\n    namespaces: ["*"]\n    pods: ["*"]\n    ${ALL}`);
    const id = identityFor(policy, alice);
    for (const action of ['shell', 'command', 'file-transfer', 'port-forward'] as const) {
      assert.equal(authorize(policy, id, request('any', 'pod', { action, tty: action !== 'port-forward' })).allowed, true);
    }
  });

  it('groups: a rule for a group applies to its members only', () => {
    const policy = withRules(`  - groups: [devs]
    namespaces: [dev]
    pods: ["*"]
    shell: true
  - groups: [ops]
    namespaces: ["*"]
    pods: ["*"]
    commands: true`);
    const a = identityFor(policy, alice);
    const b = identityFor(policy, bob);
    assert.deepEqual(authorize(policy, a, request('dev', 'x')), { allowed: true, rule: 1 });
    assert.equal(authorize(policy, a, request('prod', 'x', { action: 'command' })).allowed, false);
    assert.deepEqual(authorize(policy, b, request('prod', 'x', { action: 'command' })), { allowed: true, rule: 2 });
    const d = authorize(policy, b, request('dev', 'x'));
    assert.equal(d.allowed, false);
    assert.match(d.allowed ? '' : d.message, /^identity "bob" may not open a shell in dev\/x: no rule that reaches dev\/x grants shell \(rules for bob: #2 \*\/\* commands\)$/);
  });

  it('containers: default any; a rule naming containers needs one named or resolved', () => {
    const policy = withRules(`  - identities: [alice]
    namespaces: [a]
    pods: ["*"]
    containers: [app, app-*]
    shell: true`);
    const id = identityFor(policy, alice);
    assert.equal(authorize(policy, id, request('a', 'p', { container: 'app' })).allowed, true);
    assert.equal(authorize(policy, id, request('a', 'p', { container: 'app-sidecar' })).allowed, true);
    const side = authorize(policy, id, request('a', 'p', { container: 'istio-proxy' }));
    assert.equal(side.allowed, false);
    assert.match(side.allowed ? '' : side.message, /no rule allows container "istio-proxy" in a\/p/);
    const unnamed = authorize(policy, id, request('a', 'p', { container: null }));
    assert.equal(unnamed.allowed, false);
    assert.equal(unnamed.allowed ? null : unnamed.pending, true, 'the default container is known only after resolution');
    assert.equal(unnamed.allowed ? null : unnamed.reason, 'pending');
    assert.equal(authorize(policy, id, request('a', 'p', { container: 'app', podName: 'p' })).allowed, true, 'second call with the resolved container');
  });

  it('workloads vs pods: decided on the workload name first, on the resolved pod after', () => {
    const policy = withRules(`  - identities: [alice]
    namespaces: [team-a]
    workloads: [deploy/web*, sts/*]
    shell: true
  - identities: [alice]
    namespaces: [team-b]
    pods: [api-*]
    shell: true
  - identities: [alice]
    namespaces: [team-c]
    workloads: ["*/db"]
    shell: true`);
    const id = identityFor(policy, alice);
    // Call 1, before any API call: workload rules decide by name.
    assert.deepEqual(authorize(policy, id, request('team-a', 'deploy/web-frontend')), { allowed: true, rule: 1 });
    assert.deepEqual(authorize(policy, id, request('team-a', 'sts/postgres')), { allowed: true, rule: 1 });
    assert.deepEqual(authorize(policy, id, request('team-c', 'sts/db')), { allowed: true, rule: 3 });
    assert.deepEqual(authorize(policy, id, request('team-c', 'deploy/db')), { allowed: true, rule: 3 });
    const wrongKind = authorize(policy, id, request('team-a', 'ds/web'));
    assert.equal(wrongKind.allowed, false);
    assert.equal(wrongKind.allowed ? null : wrongKind.pending, false, 'no rule could allow it: refused before any API call');
    assert.match(wrongKind.allowed ? '' : wrongKind.message, /no rule allows daemonset "web" in namespace "team-a"/);
    // A pod login never matches a workload rule: the bridge does not look up pod owners.
    const byPod = authorize(policy, id, request('team-a', 'web-frontend-7d9f-x2'));
    assert.equal(byPod.allowed, false);
    assert.match(byPod.allowed ? '' : byPod.message, /rules that name workloads apply only when you log in by workload \(KIND\/NAME\)/);
    // A workload login where only pod rules speak: pending until the pod is known.
    const first = authorize(policy, id, request('team-b', 'deploy/api'));
    assert.equal(first.allowed, false);
    assert.equal(first.allowed ? null : first.pending, true);
    assert.deepEqual(authorize(policy, id, request('team-b', 'deploy/api', { podName: 'api-5c6d-abc' })), { allowed: true, rule: 2 });
    const second = authorize(policy, id, request('team-b', 'deploy/api', { podName: 'worker-1' }));
    assert.equal(second.allowed, false);
    assert.equal(second.allowed ? null : second.pending, false, 'the second answer is final');
    assert.match(second.allowed ? '' : second.message, /no rule allows deployment "api" or its pod "worker-1" in namespace "team-b"/);
    // Whatever call 1 allowed, call 2 allows too.
    assert.equal(authorize(policy, id, request('team-a', 'deploy/web-frontend', { podName: 'web-frontend-7d9f-x2', container: 'nginx' })).allowed, true);
  });

  it('the credential must permit what the rule grants: no-pty, no-port-forwarding, forced commands', () => {
    const policy = load(`version: 1
identities:
  - name: ci
    keys:
      - no-pty,no-port-forwarding ${alice.line}
  - name: bot
    keys:
      - command="backup" ${bob.line}
rules:
  - identities: [ci, bot]
    namespaces: ["*"]
    pods: ["*"]
    ${ALL}`);
    const ci = identityFor(policy, alice);
    assert.equal(authorize(policy, ci, request('a', 'p', { action: 'command' })).allowed, true);
    const pty = authorize(policy, ci, request('a', 'p', { tty: true }));
    assert.equal(pty.allowed ? '' : pty.reason, 'credential');
    const fwd = authorize(policy, ci, request('a', 'p', { action: 'port-forward' }));
    assert.match(fwd.allowed ? '' : fwd.message, /its key does not permit port forwarding \(no-port-forwarding or restrict\)$/);
    const bot = identityFor(policy, bob);
    const shell = authorize(policy, bot, request('a', 'p', { action: 'shell' }));
    assert.equal(shell.allowed ? '' : shell.reason, 'forced-command', 'a shell would escape the forced command');
    assert.equal(authorize(policy, bot, request('a', 'p', { action: 'command' })).allowed, true);
  });

  it('reads group membership from the policy in force: a reload applies to new sessions on old connections', () => {
    const before = withRules(`  - groups: [devs]\n    namespaces: [a]\n    pods: ["*"]\n    shell: true`);
    const id = identityFor(before, alice);
    assert.equal(authorize(before, id, request('a', 'p')).allowed, true);
    const movedOut = load(`version: 1
groups: [{ name: devs }]
identities:
  - name: alice
    keys: ["${alice.line}"]
rules:
  - groups: [devs]
    namespaces: [a]
    pods: ["*"]
    shell: true
`);
    assert.equal(authorize(movedOut, id, request('a', 'p')).allowed, false);
    const gone = load(`version: 1\nidentities: []\n`);
    const d = authorize(gone, id, request('a', 'p'));
    assert.equal(d.allowed ? '' : d.message, 'identity "alice" may not open a shell in a/p: the identity is no longer in the policy');
  });

  it('never throws, and refuses a request without a resolved namespace', () => {
    const policy = withRules(`  - identities: [alice]\n    namespaces: ["*"]\n    pods: ["*"]\n    ${ALL}`);
    const id = identityFor(policy, alice);
    const unresolved = { ...request('a', 'p'), target: { raw: 'p', namespace: null, ref: { kind: 'pod', name: 'p' }, container: null } } as unknown as AccessRequest;
    const d = authorize(policy, id, unresolved);
    assert.equal(d.allowed ? '' : d.message, 'access check failed: the namespace was not resolved');
    assert.equal(authorize(policy, id, null as unknown as AccessRequest).allowed, false);
    assert.equal(authorize(policy, id, { ...request('a', 'p'), action: 'sudo' } as unknown as AccessRequest).allowed, false);
    assert.equal(authorize(policy, id, { ...request('a', 'p'), action: 'constructor' } as unknown as AccessRequest).allowed, false);
  });

  it('messages stay one printable line whatever the names', () => {
    const policy = fromAuthorizedKeys(`no-pty ${alice.line.replace('alice@laptop', 'alice "the admin" \u00e9')}`);
    const id = identityFor(policy, alice);
    const d = authorize(policy, id, request('a', 'p', { tty: true }));
    assert.equal(d.allowed, false);
    assert.match(d.allowed ? '' : d.message, /^[\x20-\x7e]+$/);
  });
});

describe('certificates: principals to identities', () => {
  const policy = load(`version: 1
groups: [{ name: sre }]
identities:
  - name: bob
    principals: [bob, bob@example.com]
    groups: [sre]
  - name: carol
    principals: [carol]
certificateAuthorities:
  - name: corp
    key: ${ca.line}
    revoked:
      serials: [17, "18446744073709551615"]
      keyIds: [bob-old-laptop]
rules:
  - groups: [sre]
    namespaces: ["*"]
    pods: ["*"]
    ${ALL}
`);
  const cert = (more: Partial<CertificateLogin> = {}): CertificateLogin => ({
    keyFingerprint: stranger.fingerprint,
    keyId: 'bob-laptop-2026',
    serial: 42n,
    caKey: ca.blob,
    forceCommand: null,
    permitPty: true,
    permitPortForwarding: true,
    ...more,
  });

  it('maps principals to the one identity they select', () => {
    const r = resolvePrincipals(policy, ['bob@example.com', 'nobody'], cert());
    assert.ok(r.ok, r.ok ? '' : r.refused);
    assert.equal(r.identity.name, 'bob');
    assert.equal(r.identity.keyFingerprint, stranger.fingerprint);
    assert.deepEqual(r.identity.source, { kind: 'certificate', keyId: 'bob-laptop-2026', serial: '42', principals: ['bob@example.com', 'nobody'], principal: 'bob@example.com', caFingerprint: ca.fingerprint });
    assert.deepEqual(r.identity.kubernetes, { user: 'bob', groups: [] });
    assert.equal(authorize(policy, r.identity, request('prod', 'x', { tty: true })).allowed, true);
  });

  it('refuses untrusted CAs, revoked serials and key ids, no principals, unknown and ambiguous principals', () => {
    const code = (principals: string[], more: Partial<CertificateLogin> = {}) => {
      const r = resolvePrincipals(policy, principals, cert(more));
      return r.ok ? 'ok' : r.code;
    };
    assert.equal(code(['bob'], { caKey: otherCa.blob }), 'untrusted-ca');
    assert.equal(code(['bob'], { serial: 17n }), 'revoked');
    assert.equal(code(['bob'], { serial: '18446744073709551615' }), 'revoked');
    assert.equal(code(['bob'], { serial: '017' }), 'revoked', 'decimal serials compare by value');
    assert.equal(code(['bob'], { keyId: 'bob-old-laptop' }), 'revoked');
    assert.equal(code([]), 'no-principals');
    assert.equal(code(['mallory']), 'unknown-principal');
    assert.equal(code(['bob', 'carol']), 'ambiguous');
    assert.equal(code(['bob', 'bob@example.com']), 'ok', 'two principals of the same identity are fine');
    const r = resolvePrincipals(policy, ['bob', 'carol'], cert());
    assert.equal(r.ok ? '' : r.refused, 'certificate "bob-laptop-2026" serial 42: principals "bob", "carol" select several identities (bob, carol)');
    assert.equal(code(['bob'], { caKey: ca.blob }), 'ok');
    assert.equal(resolvePrincipals(fromAuthorizedKeys(alice.line), ['bob'], cert()).ok, false, 'authorized_keys mode trusts no CA');
  });

  it('certificate extensions and force-command limit the identity like key options', () => {
    const r = resolvePrincipals(policy, ['bob'], cert({ permitPty: false, permitPortForwarding: false, forceCommand: 'uptime' }));
    assert.ok(r.ok);
    const pty = authorize(policy, r.identity, request('a', 'p', { action: 'command', tty: true }));
    assert.match(pty.allowed ? '' : pty.message, /its certificate does not permit a terminal \(no permit-pty\)/);
    const fwd = authorize(policy, r.identity, request('a', 'p', { action: 'port-forward' }));
    assert.match(fwd.allowed ? '' : fwd.message, /its certificate does not permit port forwarding/);
    assert.equal(planSession(r.identity, { kind: 'shell' }).command, 'uptime');
  });
});

describe('planSession: forced commands as sshd applies them', () => {
  const policy = load(`version: 1
identities:
  - name: free
    keys: ["${alice.line}"]
  - name: bot
    keys: ['command="tar -cf - /data" ${bob.line}']
`);
  const free = identityFor(policy, alice);
  const bot = identityFor(policy, bob);

  it('without a forced command: shell, exec and sftp map to their actions', () => {
    assert.deepEqual(planSession(free, { kind: 'shell' }), { action: 'shell', command: null, env: {}, forced: false });
    assert.deepEqual(planSession(free, { kind: 'exec', command: 'ls -l' }), { action: 'command', command: 'ls -l', env: {}, forced: false });
    assert.deepEqual(planSession(free, { kind: 'subsystem', name: 'sftp' }), { action: 'file-transfer', command: null, env: {}, forced: false });
  });

  it('with one: every request runs it, and the request is passed on in SSH_ORIGINAL_COMMAND', () => {
    assert.deepEqual(planSession(bot, { kind: 'shell' }), { action: 'command', command: 'tar -cf - /data', env: {}, forced: true });
    assert.deepEqual(planSession(bot, { kind: 'exec', command: 'rm -rf /' }), { action: 'command', command: 'tar -cf - /data', env: { SSH_ORIGINAL_COMMAND: 'rm -rf /' }, forced: true });
    assert.deepEqual(planSession(bot, { kind: 'subsystem', name: 'sftp' }), { action: 'command', command: 'tar -cf - /data', env: { SSH_ORIGINAL_COMMAND: 'sftp' }, forced: true });
  });
});

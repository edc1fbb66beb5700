import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BridgeError } from '../../src/errors.ts';
import {
  DNS_LABEL_MAX,
  DNS_SUBDOMAIN_MAX,
  KIND_WORDS,
  MAX_LOGIN_NAME_LENGTH,
  TARGET_GRAMMAR,
  describeRef,
  formatTarget,
  isDnsLabel,
  isDnsSubdomain,
  parseKind,
  parseTarget,
  type Target,
  type TargetRef,
  type WorkloadKind,
} from '../../src/target.ts';

type Parsed = Omit<Target, 'raw'>;

function pod(namespace: string | null, name: string, container: string | null = null): Parsed {
  return { namespace, ref: { kind: 'pod', name }, container };
}
function workload(namespace: string | null, kind: WorkloadKind, name: string, container: string | null = null): Parsed {
  return { namespace, ref: { kind, name }, container };
}
function strip(t: Target): Parsed {
  return { namespace: t.namespace, ref: t.ref, container: t.container };
}

/** Parses `raw`, which must fail; checks the error's shape and returns the reason part. */
function reasonFor(raw: string): { message: string; reason: string } {
  let caught: unknown;
  try {
    parseTarget(raw);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof BridgeError, `expected a BridgeError for ${JSON.stringify(raw)}, got ${String(caught)}`);
  assert.equal(caught.code, 'invalid-target');
  const message = caught.message;
  assert.ok(message.startsWith('invalid login name '), message);
  const suffix = `; expected ${TARGET_GRAMMAR}`;
  assert.ok(message.endsWith(suffix), message);
  assertOneSafeLine(message);
  // `invalid login name "ESCAPED"[... (N characters)]: REASON; expected GRAMMAR`
  let i = 'invalid login name '.length;
  assert.equal(message[i], '"', message);
  i++;
  while (i < message.length && message[i] !== '"') i += message[i] === '\\' ? 2 : 1;
  i++;
  const truncated = /^\.\.\. \(\d+ characters\)/.exec(message.slice(i));
  if (truncated !== null) i += truncated[0].length;
  assert.equal(message.slice(i, i + 2), ': ', message);
  return { message, reason: message.slice(i + 2, -suffix.length) };
}

function assertOneSafeLine(message: string): void {
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    assert.ok(c >= 0x20 && c <= 0x7e, `message has character 0x${c.toString(16)} at ${i}: ${JSON.stringify(message)}`);
  }
  assert.ok(message.length <= 600, `message is ${message.length} characters long`);
}

// ---------------------------------------------------------------------------------------------
// Accepted names

const LABEL_63 = 'a'.repeat(62) + 'z';
const SUBDOMAIN_253 = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');

const accepted: Array<[string, Parsed]> = [
  // NS.POD, NS.POD+CONTAINER
  ['team-a.web-7d9f', pod('team-a', 'web-7d9f')],
  ['team-a.web.v2-0', pod('team-a', 'web.v2-0')],
  ['team-a.web-7d9f+nginx', pod('team-a', 'web-7d9f', 'nginx')],
  ['team-a.web.v2-0+istio-proxy', pod('team-a', 'web.v2-0', 'istio-proxy')],
  ['a.b', pod('a', 'b')],
  ['0.1+2', pod('0', '1', '2')],
  ['kube-system.coredns-5d78c9869d-abcde', pod('kube-system', 'coredns-5d78c9869d-abcde')],
  [`${LABEL_63}.${SUBDOMAIN_253}+${LABEL_63}`, pod(LABEL_63, SUBDOMAIN_253, LABEL_63)],
  // NS.KIND/NAME[+CONTAINER]
  ['team-a.deploy/web', workload('team-a', 'deployment', 'web')],
  ['team-a.deploy/web+nginx', workload('team-a', 'deployment', 'web', 'nginx')],
  ['team-a.deployment/web', workload('team-a', 'deployment', 'web')],
  ['team-a.deployments/web', workload('team-a', 'deployment', 'web')],
  ['team-a.sts/db+pg', workload('team-a', 'statefulset', 'db', 'pg')],
  ['team-a.statefulset/db', workload('team-a', 'statefulset', 'db')],
  ['team-a.statefulsets/db.v1', workload('team-a', 'statefulset', 'db.v1')],
  ['kube-system.ds/kube-proxy', workload('kube-system', 'daemonset', 'kube-proxy')],
  ['kube-system.daemonset/kube-proxy', workload('kube-system', 'daemonset', 'kube-proxy')],
  ['kube-system.daemonsets/kube-proxy', workload('kube-system', 'daemonset', 'kube-proxy')],
  ['team-a.rs/web-7d9f', workload('team-a', 'replicaset', 'web-7d9f')],
  ['team-a.replicaset/web-7d9f', workload('team-a', 'replicaset', 'web-7d9f')],
  ['team-a.replicasets/web-7d9f', workload('team-a', 'replicaset', 'web-7d9f')],
  ['team-a.job/migrate', workload('team-a', 'job', 'migrate')],
  ['team-a.jobs/migrate+main', workload('team-a', 'job', 'migrate', 'main')],
  ['team-a.po/web', pod('team-a', 'web')],
  ['team-a.pod/web.v2+c', pod('team-a', 'web.v2', 'c')],
  ['team-a.pods/web', pod('team-a', 'web')],
  ['team-a.Deploy/web', workload('team-a', 'deployment', 'web')],
  ['team-a.STS/db-0+pg', workload('team-a', 'statefulset', 'db-0', 'pg')],
  ['team-a.DaemonSet/agent', workload('team-a', 'daemonset', 'agent')],
  // Path form
  ['team-a/web', pod('team-a', 'web')],
  ['team-a/web.v2-0', pod('team-a', 'web.v2-0')],
  ['team-a/web/nginx', pod('team-a', 'web', 'nginx')],
  ['team-a/deploy/web', workload('team-a', 'deployment', 'web')],
  ['team-a/deploy/web/nginx', workload('team-a', 'deployment', 'web', 'nginx')],
  ['team-a/sts/db/pg', workload('team-a', 'statefulset', 'db', 'pg')],
  ['team-a/pod/web/nginx', pod('team-a', 'web', 'nginx')],
  ['team-a/pod/deploy/nginx', pod('team-a', 'deploy', 'nginx')],
  ['team-a/deploy', pod('team-a', 'deploy')], // a kind word is a kind only when a NAME follows
  ['team-a/web+nginx', pod('team-a', 'web', 'nginx')], // +CONTAINER ends every form
  ['team-a/deploy/web+nginx', workload('team-a', 'deployment', 'web', 'nginx')],
  // No namespace: the configured default
  ['web-7d9f', pod(null, 'web-7d9f')],
  ['web-7d9f+nginx', pod(null, 'web-7d9f', 'nginx')],
  ['deploy/web', workload(null, 'deployment', 'web')],
  ['deploy/web+nginx', workload(null, 'deployment', 'web', 'nginx')],
  ['Deploy/web', workload(null, 'deployment', 'web')],
  ['sts/db', workload(null, 'statefulset', 'db')],
  ['job/migrate+main', workload(null, 'job', 'migrate', 'main')],
  ['pod/web.v2', pod(null, 'web.v2')], // a dotted pod in the default namespace
  ['po/web+c', pod(null, 'web', 'c')],
  ['deploy', pod(null, 'deploy')],
  ['deploy+c', pod(null, 'deploy', 'c')],
  // A namespace named like a kind word: the dot form
  ['deploy.web', pod('deploy', 'web')],
  ['deploy.web+nginx', pod('deploy', 'web', 'nginx')],
  ['deploy.deploy/web', workload('deploy', 'deployment', 'web')],
  ['pod.pod/pod+pod', pod('pod', 'pod', 'pod')],
];

test('accepted login names', () => {
  for (const [raw, expected] of accepted) {
    const t = parseTarget(raw);
    assert.equal(t.raw, raw);
    assert.deepEqual(strip(t), expected, raw);
    // The canonical form means the same thing.
    assert.deepEqual(strip(parseTarget(formatTarget(t))), expected, `${raw} -> ${formatTarget(t)}`);
  }
});

test('formatTarget writes the canonical dot form', () => {
  const cases: Array<[string, string]> = [
    ['team-a/web/nginx', 'team-a.web+nginx'],
    ['team-a/deploy/web', 'team-a.deployment/web'],
    ['team-a.sts/db+pg', 'team-a.statefulset/db+pg'],
    ['team-a.pod/web', 'team-a.web'],
    ['web', 'web'],
    ['pod/web.v2', 'pod/web.v2'],
    ['po/web', 'web'],
    ['Deploy/web+c', 'deployment/web+c'],
  ];
  for (const [raw, canonical] of cases) assert.equal(formatTarget(parseTarget(raw)), canonical, raw);
});

test('describeRef is unchanged', () => {
  assert.equal(describeRef({ kind: 'pod', name: 'web' }), 'pod "web"');
  assert.equal(describeRef({ kind: 'deployment', name: 'web' }), 'deployment "web"');
});

test('kind words', () => {
  assert.equal(parseKind('deploy'), 'deployment');
  assert.equal(parseKind('DEPLOYMENTS'), 'deployment');
  assert.equal(parseKind('po'), 'pod');
  assert.equal(parseKind('cronjob'), null);
  assert.equal(parseKind(''), null);
  assert.equal(parseKind('\u212aob'), null); // KELVIN SIGN lowercases to 'k' outside ASCII
  assert.equal(parseKind('j\u0130b'), null);
  assert.equal(KIND_WORDS.size, 17);
});

test('DNS helpers', () => {
  assert.ok(isDnsLabel('a'));
  assert.ok(isDnsLabel(LABEL_63));
  assert.ok(!isDnsLabel(LABEL_63 + 'a'));
  assert.ok(!isDnsLabel('a.b'));
  assert.ok(!isDnsLabel('-a'));
  assert.ok(!isDnsLabel(''));
  assert.ok(isDnsSubdomain('a.b-c.d'));
  assert.ok(isDnsSubdomain(SUBDOMAIN_253));
  assert.ok(!isDnsSubdomain(SUBDOMAIN_253 + 'a'));
  assert.ok(!isDnsSubdomain('a..b'));
  assert.ok(!isDnsSubdomain('a.-b'));
  assert.ok(!isDnsSubdomain('a-.b'));
  assert.ok(!isDnsSubdomain('a.'));
  assert.equal(DNS_LABEL_MAX, 63);
  assert.equal(DNS_SUBDOMAIN_MAX, 253);
});

// ---------------------------------------------------------------------------------------------
// Rejected names

const LABEL_RULE = "it must be lowercase letters, digits and '-' (RFC 1123 label, at most 63 characters)";
const SUBDOMAIN_RULE =
  "it must be lowercase letters, digits, '-' and '.' (RFC 1123 subdomain, at most 253 characters)";
const KINDS = 'kinds are deploy, sts, ds, rs, job and pod, or their long forms';

const rejected: Array<[string, string]> = [
  // Empty parts, leading, trailing and double separators
  ['', 'it is empty'],
  ['.web', "it starts with '.': the namespace before it is empty"],
  ['/web', "it starts with '/': the namespace before it is empty"],
  ['+nginx', "it starts with '+': the pod before it is empty"],
  ['team-a.', "it ends with '.': the part after it is empty"],
  ['team-a/', "it ends with '/': the part after it is empty"],
  ['team-a/web/', "it ends with '/': the part after it is empty"],
  ['team-a.web+', "it ends with '+': the container after it is empty"],
  ['team-a.web.', "it ends with '.': the part after it is empty"],
  ['team-a..web', "it has '..' at character 7: the part between them is empty"],
  ['team-a//web', "it has '//' at character 7: the part between them is empty"],
  ['team-a.web++c', "it has '++' at character 11: the part between them is empty"],
  ['team-a./web', "it has './' at character 7: the part between them is empty"],
  ['team-a.web.+c', "it has '.+' at character 11: the part between them is empty"],
  ['team-a.deploy/+c', "it has '/+' at character 14: the part between them is empty"],
  // '+' placement
  ['team-a.web+c+d', "it has more than one '+' (one +CONTAINER at most)"],
  ['team-a.web+c/d', "it has '/' after '+' (+CONTAINER must come last)"],
  ['team-a/web/c+d', 'it names the container twice (/CONTAINER and +CONTAINER); give it once'],
  // Uppercase, '_', other characters
  ['Team-A.web', `namespace "Team-A" has uppercase 'T': ${LABEL_RULE}`],
  ['team_a.web', `namespace "team_a" has '_' (use '-'): ${LABEL_RULE}`],
  ['team-a.Web', `pod "Web" has uppercase 'W': ${SUBDOMAIN_RULE}`],
  ['team-a.web_1', `pod "web_1" has '_' (use '-'): ${SUBDOMAIN_RULE}`],
  ['team-a.web+Nginx', `container "Nginx" has uppercase 'N': ${LABEL_RULE}`],
  ['team-a.web+side_car', `container "side_car" has '_' (use '-'): ${LABEL_RULE}`],
  ['team-a.web+a.b', `container "a.b" has '.': ${LABEL_RULE}`],
  ['team-a.deploy/Web', `deployment "Web" has uppercase 'W': ${SUBDOMAIN_RULE}`],
  ['team-a/sts/DB', `statefulset "DB" has uppercase 'D': ${SUBDOMAIN_RULE}`],
  ['WEB', `pod "WEB" has uppercase 'W': ${SUBDOMAIN_RULE}`],
  ['team a.web', `namespace "team a" has a space: ${LABEL_RULE}`],
  ['team-a.web@host', `pod "web@host" has '@': ${SUBDOMAIN_RULE}`],
  ["team-a.it's", `pod "it's" has "'": ${SUBDOMAIN_RULE}`],
  ['Team-A/web', `namespace "Team-A" has uppercase 'T': ${LABEL_RULE}`],
  // Start, end and length
  ['-team.web', `namespace "-team" starts with '-': it must start and end with a letter or digit (RFC 1123 label)`],
  ['team-.web', `namespace "team-" ends with '-': it must start and end with a letter or digit (RFC 1123 label)`],
  ['team-a.-web', `pod "-web" starts with '-': it must start and end with a letter or digit (RFC 1123 subdomain)`],
  ['team-a.web-', `pod "web-" ends with '-': it must start and end with a letter or digit (RFC 1123 subdomain)`],
  [
    'team-a.web-.v2',
    `pod "web-.v2" has '-.': each dot-separated part must start and end with a letter or digit (RFC 1123 subdomain)`,
  ],
  [
    'team-a.web.-v2',
    `pod "web.-v2" has '.-': each dot-separated part must start and end with a letter or digit (RFC 1123 subdomain)`,
  ],
  ['team-a.web+-c', `container "-c" starts with '-': it must start and end with a letter or digit (RFC 1123 label)`],
  [
    `${LABEL_63}a.web`,
    `namespace "${LABEL_63}a" is 64 characters long: at most 63 are allowed (RFC 1123 label)`,
  ],
  [
    `team-a.web+${LABEL_63}a`,
    `container "${LABEL_63}a" is 64 characters long: at most 63 are allowed (RFC 1123 label)`,
  ],
  // Kinds
  ['team-a.deployy/web', `unknown kind "deployy" before '/' (did you mean "deploy"? ${KINDS})`],
  ['team-a.cronjob/nightly', 'a cronjob has no pods of its own: name one of its jobs (job/NAME)'],
  ['team-a/cj/nightly/main', 'a cronjob has no pods of its own: name one of its jobs (job/NAME)'],
  ['team-a.web/nginx', `unknown kind "web" before '/' (${KINDS}); for container "nginx" write team-a.web+nginx`],
  ['team-a.web/nginx+c', `unknown kind "web" before '/' (${KINDS})`],
  ['team-a.web.v2/x', `unknown kind "web.v2" before '/' (${KINDS}); for container "x" write team-a.web.v2+x`],
  ['team-a/foo/web/c', `unknown kind "foo" in NAMESPACE/KIND/NAME/CONTAINER (${KINDS})`],
  [
    'team-a/statefullset/db/c',
    `unknown kind "statefullset" in NAMESPACE/KIND/NAME/CONTAINER (did you mean "statefulset"? ${KINDS})`,
  ],
  // Too many parts
  ['team-a.deploy/web/nginx', "too many '/': only +CONTAINER may follow NAMESPACE.KIND/NAME"],
  [
    'deploy/web/nginx',
    `too many '/': "deploy" is a kind, so only +CONTAINER may follow KIND/NAME (a namespace named "deploy" is written deploy.POD)`,
  ],
  ['team-a/deploy/web/nginx/x', "too many '/' (at most NAMESPACE/KIND/NAME/CONTAINER)"],
  // Length of the whole name
  ['a'.repeat(MAX_LOGIN_NAME_LENGTH + 1), `it is ${MAX_LOGIN_NAME_LENGTH + 1} characters long (at most 512)`],
];

test('rejected login names: the exact reason', () => {
  for (const [raw, reason] of rejected) {
    assert.equal(reasonFor(raw).reason, reason, `for ${JSON.stringify(raw)}`);
  }
});

test('the whole message for a typical mistake', () => {
  assert.equal(
    reasonFor('Team-A.web').message,
    `invalid login name "Team-A.web": namespace "Team-A" has uppercase 'T': ${LABEL_RULE}; expected ` +
      '[NAMESPACE.]POD[+CONTAINER], [NAMESPACE.]KIND/NAME[+CONTAINER] or NAMESPACE/POD[/CONTAINER]',
  );
});

test('hostile characters are escaped, never echoed raw', () => {
  const cases: Array<[string, string, string]> = [
    ['te\x1bam.web', '"te\\x1bam.web"', 'namespace "te\\x1bam" has control character \\x1b'],
    ['team-a.web\n', '"team-a.web\\x0a"', 'pod "web\\x0a" has control character \\x0a'],
    ['team-a.web\r\nrm -rf', '"team-a.web\\x0d\\x0arm -rf"', 'pod "web\\x0d\\x0arm -rf" has control character \\x0d'],
    ['team-a.w\u00e9b', '"team-a.w\\xe9b"', 'pod "w\\xe9b" has non-ASCII character \\xe9'],
    ['team-a.\u{1f600}', '"team-a.\\u{1f600}"', 'pod "\\u{1f600}" has non-ASCII character \\u{1f600}'],
    ['team-a.web\u202e', '"team-a.web\\u202e"', 'pod "web\\u202e" has non-ASCII character \\u202e'],
    ['team-a.web\u2028', '"team-a.web\\u2028"', 'pod "web\\u2028" has non-ASCII character \\u2028'],
    ['team-a.web\u0085', '"team-a.web\\x85"', 'pod "web\\x85" has control character \\x85'],
    ['team-a.web\ud800', '"team-a.web\\ud800"', 'pod "web\\ud800" has non-ASCII character \\ud800'],
    ['team-a.we"b', '"team-a.we\\"b"', 'pod "we\\"b" has \'\\"\''],
    ['team-a.we\\b', '"team-a.we\\\\b"', "pod \"we\\\\b\" has '\\\\'"],
    ['\u0000', '"\\x00"', 'pod "\\x00" has control character \\x00'],
  ];
  for (const [raw, shown, reasonStart] of cases) {
    const { message } = reasonFor(raw);
    assert.ok(message.startsWith(`invalid login name ${shown}: ${reasonStart}`), `${JSON.stringify(raw)}: ${message}`);
  }
});

test('long names are capped in the message', () => {
  const { message } = reasonFor('x'.repeat(10_000));
  assert.equal(
    message,
    `invalid login name "${'x'.repeat(80)}"... (10000 characters): it is 10000 characters long (at most 512); expected ${TARGET_GRAMMAR}`,
  );
  const emoji = reasonFor('\u{1f600}'.repeat(600)).message;
  assert.ok(emoji.includes('(600 characters): it is 600 characters long'), emoji);
  const pod300 = reasonFor(`team-a.${'p'.repeat(300)}`).message;
  assert.ok(pod300.includes(`pod "${'p'.repeat(64)}"... (300 characters) is 300 characters long: at most 253`), pod300);
});

test('non-string input is a BridgeError too', () => {
  for (const value of [undefined, null, 42, {}, ['a']]) {
    assert.throws(
      () => parseTarget(value as unknown as string),
      (err: unknown) => err instanceof BridgeError && err.code === 'invalid-target' && !err.message.includes('\n'),
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Properties

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const alnum = fc.constantFrom(...ALNUM);
const labelChar = fc.oneof({ weight: 4, arbitrary: alnum }, { weight: 1, arbitrary: fc.constant('-') });

function labelArb(maxLength: number): fc.Arbitrary<string> {
  return fc.oneof(
    alnum,
    fc
      .tuple(alnum, fc.string({ unit: labelChar, maxLength: maxLength - 2 }), alnum)
      .map(([a, middle, b]) => a + middle + b),
  );
}

const dnsLabel = fc.oneof({ weight: 5, arbitrary: labelArb(12) }, { weight: 1, arbitrary: labelArb(DNS_LABEL_MAX) });
const dnsSubdomain = fc
  .array(fc.oneof({ weight: 5, arbitrary: labelArb(12) }, { weight: 1, arbitrary: labelArb(63) }), {
    minLength: 1,
    maxLength: 5,
  })
  .map((parts) => parts.join('.'))
  .filter((s) => s.length <= DNS_SUBDOMAIN_MAX);

const kindWordsByKind = new Map<TargetRef['kind'], string[]>();
for (const [word, kind] of KIND_WORDS) kindWordsByKind.set(kind, [...(kindWordsByKind.get(kind) ?? []), word]);

/** A kind word for `kind`, in a random ASCII case. */
function kindWordArb(kind: TargetRef['kind']): fc.Arbitrary<string> {
  return fc
    .tuple(fc.constantFrom(...(kindWordsByKind.get(kind) ?? [])), fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }))
    .map(([word, upper]) => [...word].map((c, i) => (upper[i] === true ? c.toUpperCase() : c)).join(''));
}

const targetArb: fc.Arbitrary<{ t: Parsed; kindWord: string; podWord: string }> = fc
  .record({
    namespace: fc.option(dnsLabel, { nil: null }),
    kind: fc.constantFrom<TargetRef['kind']>('pod', 'deployment', 'statefulset', 'daemonset', 'replicaset', 'job'),
    // Kind words as names and namespaces are the interesting corner: draw them often.
    name: fc.oneof({ weight: 4, arbitrary: dnsSubdomain }, { weight: 1, arbitrary: fc.constantFrom(...KIND_WORDS.keys()) }),
    container: fc.option(fc.oneof(dnsLabel, fc.constantFrom(...KIND_WORDS.keys())), { nil: null }),
  })
  .chain(({ namespace, kind, name, container }) =>
    fc.record({
      t: fc.constant<Parsed>({
        namespace,
        ref: kind === 'pod' ? { kind: 'pod', name } : { kind, name },
        container,
      }),
      kindWord: kindWordArb(kind),
      podWord: kindWordArb('pod'),
    }),
  );

const namespaceArbWithKindWords = fc.oneof(dnsLabel, fc.constantFrom(...KIND_WORDS.keys()));

/** Every way the docs say `t` may be written. */
function writtenForms(t: Parsed, kindWord: string, podWord: string): string[] {
  const { namespace: ns, ref, container: c } = t;
  const plus = c === null ? '' : `+${c}`;
  const slash = c === null ? '' : `/${c}`;
  const forms: string[] = [];
  if (ref.kind === 'pod') {
    if (ns !== null) {
      forms.push(`${ns}.${ref.name}${plus}`, `${ns}.${podWord}/${ref.name}${plus}`);
    } else {
      if (!ref.name.includes('.')) forms.push(`${ref.name}${plus}`);
      forms.push(`${podWord}/${ref.name}${plus}`);
    }
  } else {
    forms.push(`${ns === null ? '' : `${ns}.`}${kindWord}/${ref.name}${plus}`);
  }
  // The path form needs a namespace that is not a kind word (`deploy/web` is a deployment).
  if (ns !== null && parseKind(ns) === null) {
    if (ref.kind === 'pod') {
      // `NS/deploy/c` names deployment "c": a pod named like a kind word with a container needs `pod/`.
      if (c === null || parseKind(ref.name) === null) forms.push(`${ns}/${ref.name}${slash}`);
      forms.push(`${ns}/${podWord}/${ref.name}${slash}`, `${ns}/${ref.name}${plus}`);
    } else {
      forms.push(`${ns}/${kindWord}/${ref.name}${slash}`, `${ns}/${kindWord}/${ref.name}${plus}`);
    }
  }
  return forms;
}

test('property: every valid target round-trips through formatTarget and every written form', () => {
  fc.assert(
    fc.property(targetArb, ({ t, kindWord, podWord }) => {
      const canonical = formatTarget({ raw: '', ...t });
      const viaCanonical = parseTarget(canonical);
      assert.deepEqual(strip(viaCanonical), t, canonical);
      assert.equal(viaCanonical.raw, canonical);
      assert.equal(formatTarget(viaCanonical), canonical);
      for (const form of writtenForms(t, kindWord, podWord)) {
        assert.deepEqual(strip(parseTarget(form)), t, form);
      }
    }),
    { numRuns: 500 },
  );
});

test('property: a namespace named like a kind word is reached with the dot form; the path form reads a kind', () => {
  fc.assert(
    fc.property(fc.constantFrom(...KIND_WORDS.keys()), dnsSubdomain, (ns, name) => {
      assert.deepEqual(strip(parseTarget(`${ns}.${name}`)), pod(ns, name));
      const viaPath = parseTarget(`${ns}/${name}`);
      assert.equal(viaPath.namespace, null);
      assert.equal(viaPath.ref.kind, parseKind(ns));
      assert.equal(viaPath.ref.name, name);
    }),
  );
});

test('property: namespaces of every shape survive formatTarget', () => {
  fc.assert(
    fc.property(fc.option(namespaceArbWithKindWords, { nil: null }), dnsSubdomain, fc.option(dnsLabel, { nil: null }), (ns, name, c) => {
      const t = pod(ns, name, c);
      assert.deepEqual(strip(parseTarget(formatTarget({ raw: '', ...t }))), t);
    }),
  );
});

/** Checks one call on arbitrary input: a Target with valid parts, or a well-formed BridgeError. */
function checkArbitrary(raw: string): void {
  let result: Target | undefined;
  try {
    result = parseTarget(raw);
  } catch (err) {
    assert.ok(err instanceof BridgeError, `not a BridgeError for ${JSON.stringify(raw.slice(0, 100))}: ${String(err)}`);
    assert.equal(err.code, 'invalid-target');
    assert.ok(err.message.startsWith('invalid login name '));
    assert.ok(err.message.endsWith(`; expected ${TARGET_GRAMMAR}`));
    assertOneSafeLine(err.message);
  }
  if (result !== undefined) {
    assert.equal(result.raw, raw);
    if (result.namespace !== null) assert.ok(isDnsLabel(result.namespace));
    assert.ok(isDnsSubdomain(result.ref.name));
    if (result.container !== null) assert.ok(isDnsLabel(result.container));
    assert.deepEqual(strip(parseTarget(formatTarget(result))), strip(result));
  }
}

const hostileUnit = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...'abz09-.+/', 'deploy', 'pod', 'sts/') },
  { weight: 2, arbitrary: fc.constantFrom(...'AZ_ @:\'"\\') },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom('\u007f', '\u0085', '\u00e9', '\u2028', '\u2029', '\u202e', '\u200b', '\ufeff', '\ud800', '\udfff', '\u{1f600}', '\u0130', '\u212a'),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);

test('property: arbitrary strings give a Target or a single-line BridgeError', () => {
  fc.assert(fc.property(fc.string({ unit: hostileUnit, maxLength: 40 }), checkArbitrary), { numRuns: 3000 });
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), checkArbitrary), { numRuns: 500 });
  fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), checkArbitrary), { numRuns: 500 });
});

// Speed is a benchmark matter; here long inputs must only give the same well-formed answers.
test('property: strings up to 10k characters give a Target or a single-line BridgeError', () => {
  fc.assert(
    fc.property(fc.string({ unit: hostileUnit, minLength: 400, maxLength: 10_000 }), checkArbitrary),
    { numRuns: 100 },
  );
  fc.assert(fc.property(fc.string({ unit: 'binary', minLength: 5_000, maxLength: 10_000 }), checkArbitrary), {
    numRuns: 50,
  });
});

test('adversarial megabyte inputs are refused with the length message', () => {
  const patterns = ['a.', 'a-', '+', '/', '.', '\x00', '\u{1f600}', '\ud800', 'a'.repeat(63) + '.', 'deploy/', 'A'];
  for (const pattern of patterns) {
    const raw = pattern.repeat(Math.ceil(1_000_000 / pattern.length));
    assert.throws(() => parseTarget(raw), (err: unknown) => err instanceof BridgeError && /characters/.test(err.message));
  }
  // Just under the cap, every part at its limit or beyond.
  checkArbitrary(`${LABEL_63}/statefulsets/${SUBDOMAIN_253}/${LABEL_63}`);
  checkArbitrary(`${'a-'.repeat(255)}.b`);
});

/**
 * The login-name grammar: a pure function from the SSH user name to a Target or a precise error.
 * See docs/targets.md for the user-facing contract.
 *
 *   [NAMESPACE.]POD[+CONTAINER]            namespace = everything before the FIRST '.'
 *   [NAMESPACE.]KIND/NAME[+CONTAINER]      KIND: deploy, sts, ds, rs, job, pod (+ long forms)
 *   NAMESPACE/POD[/CONTAINER]              path form
 *   NAMESPACE/KIND/NAME[/CONTAINER]        path form for a workload
 *
 * Disambiguation, in this order, once the optional `+CONTAINER` suffix is split off:
 *   - no '/': `NS.POD` when there is a '.', else `POD` in the default namespace;
 *   - a '.' in the first '/' segment: `NS.KIND/NAME`;
 *   - a first segment that is a kind word: `KIND/NAME` in the default namespace (so a namespace
 *     literally named `deploy` is reached as `deploy.POD`, never `deploy/POD`);
 *   - otherwise the path form: `NS/...`, where the segment after NS is a kind only when a NAME
 *     follows it (`team-a/deploy` is pod "deploy"; `team-a/deploy/web` is deployment "web").
 *
 * The parser is linear in the input (no regular expressions), never throws anything but a
 * BridgeError('invalid-target'), and its messages are one ASCII line: everything the client
 * sent is escaped and capped before it is echoed.
 */
import { BridgeError } from './errors.ts';
import { closestWord } from './words.ts';

export type WorkloadKind = 'deployment' | 'statefulset' | 'daemonset' | 'replicaset' | 'job';

export type TargetRef = { kind: 'pod'; name: string } | { kind: WorkloadKind; name: string };

export interface Target {
  /** The login name exactly as the client sent it, for logs and messages. */
  raw: string;
  /** null: the configured default namespace. */
  namespace: string | null;
  ref: TargetRef;
  /** null: the pod's default container. */
  container: string | null;
  /** Set for a Docker target (`docker~web`, or any name on a Docker-only bridge); then
   *  `namespace` and `container` are null and `ref` is a pod named after the login, which only
   *  the Docker backend ever reads through `docker`. See parseDockerBody below. */
  docker?: DockerRef;
}

/** Which backend a login name is for; the prefix `ENGINE~` chooses one explicitly. */
export type Engine = 'kubernetes' | 'docker';

/** A Docker container by name or ID prefix, or a Compose service (replica N, or any running). */
export type DockerRef =
  | { kind: 'container'; name: string }
  | { kind: 'compose'; project: string; service: string; replica: number | null };

export interface ParseOptions {
  /** The backend of names without an `ENGINE~` prefix: the bridge's first backend. Default
   *  kubernetes, whose grammar is unchanged by the prefixes. */
  defaultEngine?: Engine;
}

/** The grammar in one line, appended to every invalid-target message. */
export const TARGET_GRAMMAR =
  '[NAMESPACE.]POD[+CONTAINER], [NAMESPACE.]KIND/NAME[+CONTAINER] or NAMESPACE/POD[/CONTAINER]';

/** Longer login names are refused outright (the longest valid one is 394 characters). */
export const MAX_LOGIN_NAME_LENGTH = 512;

/** RFC 1123 label: namespaces and container names. */
export const DNS_LABEL_MAX = 63;
/** RFC 1123 subdomain: pod and workload names. */
export const DNS_SUBDOMAIN_MAX = 253;

/** Kind words accepted in a login name (matched ignoring ASCII case), and what they mean. */
export const KIND_WORDS: ReadonlyMap<string, TargetRef['kind']> = new Map<string, TargetRef['kind']>([
  ['po', 'pod'],
  ['pod', 'pod'],
  ['pods', 'pod'],
  ['deploy', 'deployment'],
  ['deployment', 'deployment'],
  ['deployments', 'deployment'],
  ['sts', 'statefulset'],
  ['statefulset', 'statefulset'],
  ['statefulsets', 'statefulset'],
  ['ds', 'daemonset'],
  ['daemonset', 'daemonset'],
  ['daemonsets', 'daemonset'],
  ['rs', 'replicaset'],
  ['replicaset', 'replicaset'],
  ['replicasets', 'replicaset'],
  ['job', 'job'],
  ['jobs', 'job'],
]);

/** Kind words refused with a pointed message rather than "unknown kind". */
const CRONJOB_WORDS: ReadonlySet<string> = new Set(['cj', 'cronjob', 'cronjobs']);

const KIND_HINT = 'kinds are deploy, sts, ds, rs, job and pod, or their long forms';

/** The kind a word names (`deploy` → 'deployment', `PODS` → 'pod'), or null. */
export function parseKind(word: string): TargetRef['kind'] | null {
  if (word.length === 0 || word.length > 12) return null;
  return KIND_WORDS.get(asciiLower(word)) ?? null;
}

/** True for an RFC 1123 label: [a-z0-9-], starts and ends alphanumeric, at most 63 characters. */
export function isDnsLabel(s: string): boolean {
  return nameProblem(s, 'label') === null;
}

/** True for an RFC 1123 subdomain: dot-separated labels, at most 253 characters in all. */
export function isDnsSubdomain(s: string): boolean {
  return nameProblem(s, 'subdomain') === null;
}

/**
 * Canonical form for logs: `ns.pod+container`, `ns.deployment/web+container`; without a
 * namespace `pod`, or `pod/NAME` when the pod name has a dot (a bare `web.v2` would read as
 * namespace "web"). parseTarget(formatTarget(t)) gives back t's namespace, ref and container.
 */
export function formatTarget(t: Target): string {
  if (t.docker !== undefined) return `${DOCKER_PREFIX}${formatDockerRef(t.docker)}`;
  let out = t.namespace === null ? '' : `${t.namespace}.`;
  if (t.ref.kind !== 'pod') out += `${t.ref.kind}/${t.ref.name}`;
  else if (t.namespace === null && t.ref.name.includes('.')) out += `pod/${t.ref.name}`;
  else out += t.ref.name;
  if (t.container !== null) out += `+${t.container}`;
  return out;
}

/** Human form for messages: `deployment/web in namespace team-a`. */
export function describeRef(ref: TargetRef): string {
  return ref.kind === 'pod' ? `pod "${ref.name}"` : `${ref.kind} "${ref.name}"`;
}

export function parseTarget(raw: string, options: ParseOptions = {}): Target {
  try {
    return parseWithEngine(raw, options.defaultEngine ?? 'kubernetes');
  } catch (err) {
    if (err instanceof BridgeError) throw err;
    // Not reachable by design; never let anything else escape to the SSH layer.
    throw invalid(raw, 'it could not be parsed', err);
  }
}

// ---------------------------------------------------------------------------------------------

const SEPARATORS = '.+/';

function parse(raw: string): Target {
  if (typeof raw !== 'string') throw invalid(raw, 'it is not a string');
  if (raw.length === 0) throw invalid(raw, 'it is empty');
  const length = codePointLength(raw);
  if (length > MAX_LOGIN_NAME_LENGTH) {
    throw invalid(raw, `it is ${length} characters long (at most ${MAX_LOGIN_NAME_LENGTH})`);
  }
  const shape = separatorProblem(raw);
  if (shape !== null) throw invalid(raw, shape);

  // `+CONTAINER` ends every form.
  let head = raw;
  let plusContainer: string | null = null;
  const plus = raw.indexOf('+');
  if (plus >= 0) {
    if (raw.indexOf('+', plus + 1) >= 0) throw invalid(raw, "it has more than one '+' (one +CONTAINER at most)");
    head = raw.slice(0, plus);
    plusContainer = raw.slice(plus + 1);
    if (plusContainer.includes('/')) throw invalid(raw, "it has '/' after '+' (+CONTAINER must come last)");
  }

  const segments = head.split('/');
  const first = segments[0] ?? '';
  let namespace: string | null = null;
  let kind: TargetRef['kind'] = 'pod';
  let name: string;
  let pathContainer: string | null = null;

  if (segments.length === 1) {
    // NS.POD or POD
    const dot = head.indexOf('.');
    if (dot >= 0) {
      namespace = checkNamespace(raw, head.slice(0, dot));
      name = head.slice(dot + 1);
    } else {
      name = head;
    }
  } else {
    const dot = first.indexOf('.');
    const firstKind = parseKind(first);
    if (dot >= 0) {
      // NS.KIND/NAME
      namespace = checkNamespace(raw, first.slice(0, dot));
      const word = first.slice(dot + 1);
      const k = parseKind(word);
      if (k === null) throw invalid(raw, unknownKindDotForm(namespace, word, segments, plusContainer));
      kind = k;
      if (segments.length > 2) throw invalid(raw, "too many '/': only +CONTAINER may follow NAMESPACE.KIND/NAME");
      name = segments[1] ?? '';
    } else if (firstKind !== null) {
      // KIND/NAME in the default namespace
      kind = firstKind;
      if (segments.length > 2) {
        const lower = asciiLower(first);
        throw invalid(
          raw,
          `too many '/': "${lower}" is a kind, so only +CONTAINER may follow KIND/NAME ` +
            `(a namespace named "${lower}" is written ${lower}.POD)`,
        );
      }
      name = segments[1] ?? '';
    } else {
      // NS/POD[/CONTAINER] or NS/KIND/NAME[/CONTAINER]
      namespace = checkNamespace(raw, first);
      const rest = segments.slice(1);
      if (rest.length > 3) throw invalid(raw, "too many '/' (at most NAMESPACE/KIND/NAME/CONTAINER)");
      const second = rest[0] ?? '';
      const k = rest.length >= 2 ? parseKind(second) : null;
      if (rest.length === 1) {
        name = second;
      } else if (k !== null) {
        kind = k;
        name = rest[1] ?? '';
        pathContainer = rest[2] ?? null;
      } else if (rest.length === 2) {
        name = second;
        pathContainer = rest[1] ?? null;
      } else {
        throw invalid(raw, unknownKind(second, 'in NAMESPACE/KIND/NAME/CONTAINER'));
      }
      if (pathContainer !== null && plusContainer !== null) {
        throw invalid(raw, 'it names the container twice (/CONTAINER and +CONTAINER); give it once');
      }
    }
  }

  checkName(raw, kind, name, 'subdomain');
  const container = pathContainer ?? plusContainer;
  if (container !== null) checkName(raw, 'container', container, 'label');
  const ref: TargetRef = kind === 'pod' ? { kind: 'pod', name } : { kind, name };
  return { raw, namespace, ref, container };
}

function checkNamespace(raw: string, value: string): string {
  checkName(raw, 'namespace', value, 'label');
  return value;
}

function checkName(raw: string, what: string, value: string, rule: 'label' | 'subdomain'): void {
  const problem = nameProblem(value, rule);
  if (problem !== null) throw invalid(raw, `${what} ${problem}`);
}

function unknownKindDotForm(ns: string, word: string, segments: string[], plusContainer: string | null): string {
  const msg = unknownKind(word, "before '/'");
  const looksLikeKind = nearestKindWord(word) !== null || CRONJOB_WORDS.has(asciiLower(word));
  if (looksLikeKind || segments.length !== 2 || plusContainer !== null) return msg;
  // `team-a.web/nginx` almost always means a container: say how to write it.
  const target = segments[1] ?? '';
  const suggestion = `${ns}.${word}+${target}`;
  if (isDnsSubdomain(word) && isDnsLabel(target) && suggestion.length <= 100) {
    return `${msg}; for container "${target}" write ${suggestion}`;
  }
  return `${msg}; a container is written +CONTAINER`;
}

function unknownKind(word: string, where: string): string {
  if (CRONJOB_WORDS.has(asciiLower(word))) return 'a cronjob has no pods of its own: name one of its jobs (job/NAME)';
  const near = nearestKindWord(word);
  const guess = near === null ? '' : `did you mean "${near}"? `;
  return `unknown kind ${quote(word)} ${where} (${guess}${KIND_HINT})`;
}

/** A kind word one or two edits away from a typo like `deploymnt` (words of 5+ letters only:
 *  short pod names such as `db` or `web` are too close to `ds` or `job` to guess). */
function nearestKindWord(word: string): string | null {
  if (word.length < 5 || word.length > 14) return null;
  return closestWord(asciiLower(word), KIND_WORDS.keys());
}


/**
 * Why `value` is not an RFC 1123 label/subdomain, as the tail of a sentence whose subject is
 * the part's name (`has uppercase 'T': it must be ...`), or null when it is valid.
 */
function nameProblem(value: string, rule: 'label' | 'subdomain'): string | null {
  const max = rule === 'label' ? DNS_LABEL_MAX : DNS_SUBDOMAIN_MAX;
  const chars =
    rule === 'label'
      ? `it must be lowercase letters, digits and '-' (RFC 1123 label, at most ${max} characters)`
      : `it must be lowercase letters, digits, '-' and '.' (RFC 1123 subdomain, at most ${max} characters)`;
  if (value.length === 0) return 'is empty';
  const q = quote(value);
  for (let i = 0; i < value.length; ) {
    const cp = value.codePointAt(i) ?? 0;
    if (!isNameChar(cp) && !(rule === 'subdomain' && cp === 0x2e)) {
      return `${q} has ${describeChar(cp)}: ${chars}`;
    }
    i += cp > 0xffff ? 2 : 1;
  }
  // Only ASCII from here on.
  if (value.length > max) {
    return `${q} is ${value.length} characters long: at most ${max} are allowed (RFC 1123 ${rule})`;
  }
  const edge = `it must start and end with a letter or digit (RFC 1123 ${rule})`;
  const head = value.charAt(0);
  const tail = value.charAt(value.length - 1);
  if (!isAlnum(head)) return `${q} starts with '${head}': ${edge}`;
  if (!isAlnum(tail)) return `${q} ends with '${tail}': ${edge}`;
  if (rule === 'subdomain') {
    for (let i = 1; i < value.length; i++) {
      const a = value.charAt(i - 1);
      const b = value.charAt(i);
      if (a === '.' && b === '.') {
        return `${q} has '..': each dot-separated part must be non-empty (RFC 1123 subdomain)`;
      }
      if ((a === '.' && b === '-') || (a === '-' && b === '.')) {
        return `${q} has '${a}${b}': each dot-separated part must start and end with a letter or digit (RFC 1123 subdomain)`;
      }
    }
  }
  return null;
}

/** Leading, trailing and doubled separators: the empty-part errors, before any splitting. */
function separatorProblem(raw: string): string | null {
  const head = raw.charAt(0);
  if (SEPARATORS.includes(head)) {
    return `it starts with '${head}': the ${head === '+' ? 'pod' : 'namespace'} before it is empty`;
  }
  const tail = raw.charAt(raw.length - 1);
  if (SEPARATORS.includes(tail)) {
    return `it ends with '${tail}': the ${tail === '+' ? 'container' : 'part'} after it is empty`;
  }
  let position = 0; // in code points, for the message
  for (let i = 0; i < raw.length; ) {
    const cp = raw.codePointAt(i) ?? 0;
    position++;
    const a = raw.charAt(i);
    const b = raw.charAt(i + 1);
    if (SEPARATORS.includes(a) && b !== '' && SEPARATORS.includes(b)) {
      return `it has '${a}${b}' at character ${position}: the part between them is empty`;
    }
    i += cp > 0xffff ? 2 : 1;
  }
  return null;
}

function invalid(raw: string, reason: string, cause?: unknown): BridgeError {
  return invalidWith(raw, reason, TARGET_GRAMMAR, cause);
}

function invalidWith(raw: string, reason: string, grammar: string, cause?: unknown): BridgeError {
  const shown = typeof raw === 'string' ? quote(raw, 80) : '(not a string)';
  const message = `invalid login name ${shown}: ${reason}; expected ${grammar}`;
  const detail = { login: typeof raw === 'string' ? raw.slice(0, 1024) : String(typeof raw), reason };
  return new BridgeError('invalid-target', message, cause === undefined ? { detail } : { detail, cause });
}

// ---------------------------------------------------------------------------------------------
// Backend prefixes and the Docker grammar
//
//   docker~CONTAINER                   a container by name or unambiguous ID prefix
//   docker~PROJECT.SERVICE[+N]         a Compose service (replica N, else its lowest running one)
//   k8s~...                            the Kubernetes grammar above, said explicitly
//
// '~' is in neither grammar (Kubernetes and Docker names never hold it), is not special to
// ssh, scp or rsync (no ':' or '@', and no '/' that would make scp read a local path), and is
// not expanded by shells in the middle of a word. Without a prefix a name is for the bridge's
// default engine, so a Kubernetes bridge reads every name it read before.

export const DOCKER_PREFIX = 'docker~';
const ENGINE_PREFIXES: ReadonlyMap<string, Engine> = new Map<string, Engine>([
  ['docker', 'docker'],
  ['k8s', 'kubernetes'],
  ['kube', 'kubernetes'],
  ['kubernetes', 'kubernetes'],
]);

/** The Docker grammar in one line, appended to every invalid Docker login message. */
export const DOCKER_TARGET_GRAMMAR = 'CONTAINER (a name or ID prefix), PROJECT.SERVICE or PROJECT.SERVICE+N, optionally after docker~';

/** Docker's own rule for container names (moby's RestrictedNameChars). */
const DOCKER_NAME_MAX = 255;
/** Compose project names: lowercase letters, digits, '_' and '-', starting alphanumeric. */
const COMPOSE_PROJECT_MAX = 63;
const MAX_REPLICA = 99_999;

function parseWithEngine(raw: string, defaultEngine: Engine): Target {
  if (typeof raw !== 'string') return parse(raw);
  const tilde = raw.indexOf('~');
  if (tilde < 0) return defaultEngine === 'docker' ? parseDocker(raw, raw) : parse(raw);
  const word = raw.slice(0, tilde);
  const engine = ENGINE_PREFIXES.get(asciiLower(word));
  if (engine === undefined) {
    const grammar = defaultEngine === 'docker' ? DOCKER_TARGET_GRAMMAR : TARGET_GRAMMAR;
    const reason = word === '' ? "it starts with '~': name a backend before it (docker~ or k8s~)" : `unknown backend ${quote(word)} before '~' (docker or k8s)`;
    throw invalidWith(raw, reason, grammar);
  }
  const body = raw.slice(tilde + 1);
  if (engine === 'docker') return parseDocker(raw, body);
  if (body.includes('~')) throw invalid(raw, "it has more than one '~' (one backend prefix at most)");
  const t = parse(body);
  return { ...t, raw };
}

function parseDocker(raw: string, body: string): Target {
  const fail = (reason: string): never => {
    throw invalidWith(raw, reason, DOCKER_TARGET_GRAMMAR);
  };
  if (body.length === 0) fail(raw.length === 0 ? 'it is empty' : "nothing follows 'docker~'");
  const length = codePointLength(raw);
  if (length > MAX_LOGIN_NAME_LENGTH) fail(`it is ${length} characters long (at most ${MAX_LOGIN_NAME_LENGTH})`);
  for (let i = 0; i < body.length; ) {
    const cp = body.codePointAt(i) ?? 0;
    const ok = isNameChar(cp) || (cp >= 0x41 && cp <= 0x5a) || cp === 0x5f || cp === 0x2e || cp === 0x2b;
    if (!ok) {
      if (cp === 0x2f) fail("Docker names have no '/' (a Compose service is PROJECT.SERVICE)");
      if (cp === 0x7e) fail("it has more than one '~' (one backend prefix at most)");
      fail(`it has ${describeChar(cp)}: Docker names are letters, digits, '_', '.' and '-'`);
    }
    i += cp > 0xffff ? 2 : 1;
  }
  let head = body;
  let replica: number | null = null;
  const plus = body.indexOf('+');
  if (plus >= 0) {
    head = body.slice(0, plus);
    const digits = body.slice(plus + 1);
    if (digits.includes('+')) fail("it has more than one '+' (one +N replica number at most)");
    if (!/^[1-9][0-9]{0,4}$/.test(digits) || Number(digits) > MAX_REPLICA) {
      fail(`replica ${quote(digits)} after '+' is not a number from 1 to ${MAX_REPLICA}`);
    }
    replica = Number(digits);
  }
  const dot = head.indexOf('.');
  const project = dot > 0 ? head.slice(0, dot) : '';
  if (dot > 0 && composeProjectProblem(project) === null) {
    const service = head.slice(dot + 1);
    const problem = dockerNameProblem(service);
    if (problem !== null) fail(`Compose service ${problem}`);
    return dockerTarget(raw, { kind: 'compose', project, service, replica });
  }
  if (replica !== null) {
    fail(dot > 0 ? `Compose project ${composeProjectProblem(project)}` : 'a replica number (+N) follows only PROJECT.SERVICE');
  }
  const problem = dockerNameProblem(head);
  if (problem !== null) fail(`container name ${problem}`);
  return dockerTarget(raw, { kind: 'container', name: head });
}

function dockerTarget(raw: string, docker: DockerRef): Target {
  return { raw, namespace: null, ref: { kind: 'pod', name: formatDockerRef(docker) }, container: null, docker };
}

/** `web`, `shop.web`, `shop.web+2`: the login without its prefix. */
export function formatDockerRef(ref: DockerRef): string {
  if (ref.kind === 'container') return ref.name;
  return `${ref.project}.${ref.service}${ref.replica === null ? '' : `+${ref.replica}`}`;
}

/** Human form for messages: `container "web"`, `Compose service "web" (replica 2) of project "shop"`. */
export function describeDockerRef(ref: DockerRef): string {
  if (ref.kind === 'container') return `container "${ref.name}"`;
  return `Compose service "${ref.service}"${ref.replica === null ? '' : ` (replica ${ref.replica})`} of project "${ref.project}"`;
}

/** Container and service names: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
function dockerNameProblem(value: string): string | null {
  if (value.length === 0) return 'is empty';
  if (value.length > DOCKER_NAME_MAX) return `${quote(value)} is ${value.length} characters long: at most ${DOCKER_NAME_MAX} are allowed`;
  const head = value.charAt(0);
  if (!/[A-Za-z0-9]/.test(head)) return `${quote(value)} starts with '${head}': it must start with a letter or digit`;
  return null;
}

function composeProjectProblem(value: string): string | null {
  if (value.length === 0) return 'is empty';
  if (value.length > COMPOSE_PROJECT_MAX) return `${quote(value)} is too long (at most ${COMPOSE_PROJECT_MAX} characters)`;
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(value)) return `${quote(value)} must be lowercase letters, digits, '_' and '-', starting with a letter or digit`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Characters

function isNameChar(cp: number): boolean {
  return (cp >= 0x61 && cp <= 0x7a) || (cp >= 0x30 && cp <= 0x39) || cp === 0x2d;
}

function isAlnum(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/** ASCII-only lowercasing: `toLowerCase` maps e.g. KELVIN SIGN to 'k', which must not match. */
function asciiLower(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
  }
  return out;
}

function describeChar(cp: number): string {
  if (cp >= 0x41 && cp <= 0x5a) return `uppercase '${String.fromCharCode(cp)}'`;
  if (cp === 0x5f) return "'_' (use '-')";
  if (cp === 0x20) return 'a space';
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return `control character ${escapeCodePoint(cp)}`;
  if (cp > 0x7f) return `non-ASCII character ${escapeCodePoint(cp)}`;
  if (cp === 0x27) return '"\'"';
  return `'${escapeCodePoint(cp)}'`;
}

/** Printable ASCII as itself (with '"' and '\' escaped); everything else as \xNN, \uNNNN, \u{N}. */
function escapeCodePoint(cp: number): string {
  if (cp >= 0x20 && cp <= 0x7e) {
    if (cp === 0x22) return '\\"';
    if (cp === 0x5c) return '\\\\';
    return String.fromCharCode(cp);
  }
  const hex = cp.toString(16);
  if (cp <= 0xff) return `\\x${hex.padStart(2, '0')}`;
  if (cp <= 0xffff) return `\\u${hex.padStart(4, '0')}`;
  return `\\u{${hex}}`;
}

/** `"value"`, escaped to printable ASCII and capped at `max` characters inside the quotes. */
function quote(value: string, max = 64): string {
  let out = '';
  for (let i = 0; i < value.length; ) {
    const cp = value.codePointAt(i) ?? 0;
    const e = escapeCodePoint(cp);
    if (out.length + e.length > max) return `"${out}"... (${codePointLength(value)} characters)`;
    out += e;
    i += cp > 0xffff ? 2 : 1;
  }
  return `"${out}"`;
}

function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is a single code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

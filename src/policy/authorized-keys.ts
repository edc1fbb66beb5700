/**
 * A plain authorized_keys file as the simplest policy, so the server has one code path:
 * every key is an identity (named by its comment, else its fingerprint) that may do everything
 * everywhere, acting with the bridge's own Kubernetes credentials (no impersonation). The
 * line's options still apply as sshd applies them (from=, expiry-time=, no-pty, command=, ...).
 *
 * A line that cannot be used is skipped with a warning, never fatal: this is the file people
 * already have, and one bad line must not lock everyone else out. A line whose options the
 * bridge cannot honour (permitlisten=, environment=...) is skipped too: ignoring the option
 * would grant more than the line says.
 */
import { parseAuthorizedKeys } from '../ssh/authorized-keys.ts';
import { weakKeyProblem } from '../ssh/key-rules.ts';
import { blobKey } from './key-line.ts';
import { parseKeyOptions } from './key-options.ts';
import { compileGlob } from './glob.ts';
import { digestOf } from './load.ts';
import type { Policy, PolicyIdentity, PolicyKey, Rule } from './types.ts';

/** The one rule of authorized_keys mode. */
export const ALLOW_EVERYTHING: Rule = Object.freeze({
  number: 1,
  name: 'authorized_keys: every key may do everything',
  everyone: true,
  identities: new Set<string>(),
  groups: new Set<string>(),
  namespaces: Object.freeze([compileGlob('*')]),
  pods: Object.freeze([compileGlob('*')]),
  workloads: Object.freeze([{ kind: null, name: compileGlob('*'), source: '*/*' }]),
  containers: null,
  tty: true,
  commands: true,
  shell: true,
  fileTransfer: true,
  portForwarding: true,
  // Watching another person's terminal is granted only by a policy file, in so many words.
  observe: false,
});

export function fromAuthorizedKeys(text: string, file = 'authorized_keys'): Policy {
  const parsed = parseAuthorizedKeys(text);
  const warnings = parsed.problems.map((p) => `${file}:${p.line}: ${p.reason}`);
  const identities = new Map<string, PolicyIdentity>();
  const keys = new Map<string, PolicyKey[]>();
  for (const key of parsed.keys) {
    const weak = weakKeyProblem(key.blob);
    if (weak !== null) {
      warnings.push(`${file}:${key.line}: ${weak}; key ${key.fingerprint} ignored`);
      continue;
    }
    const options = parseKeyOptions(key.options);
    if (!options.ok) {
      warnings.push(`${file}:${key.line}: ${options.problem}; key ${key.fingerprint} ignored`);
      continue;
    }
    const name = identityName(key.comment, key.fingerprint);
    if (!identities.has(name)) {
      identities.set(name, Object.freeze({ name, kubernetes: null, groups: Object.freeze([]), principals: Object.freeze([]) }));
    }
    const entry: PolicyKey = Object.freeze({ identity: name, publicKey: key.key, fingerprint: key.fingerprint, comment: key.comment, options: options.options, listedAt: `${file}:${key.line}` });
    const k = blobKey(key.blob);
    // sshd tries every line holding the key, in order, until one's options admit the login.
    keys.set(k, [...(keys.get(k) ?? []), entry]);
  }
  return Object.freeze({
    kind: 'authorized-keys',
    file,
    digest: digestOf(text),
    identities,
    keys,
    principals: new Map<string, string>(),
    certificateAuthorities: Object.freeze([]),
    rules: Object.freeze([ALLOW_EVERYTHING]),
    warnings: Object.freeze(warnings),
  });
}

/** The comment (`alice@laptop`), else the fingerprint. Comments are free text and the name is
 *  echoed in logs and to the client, so one with control or non-ASCII characters is not used. */
function identityName(comment: string | null, fingerprint: string): string {
  return comment !== null && /^[\x20-\x7e]{1,253}$/.test(comment) ? comment : fingerprint;
}

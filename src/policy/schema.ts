/**
 * The shape of a policy file (docs/policy.md is the reader's version). zod checks only the
 * shape here: every object is strict, so a misspelt field (`tyy: true`, `namespace:`) is an
 * error instead of a silently absent permission or restriction. What needs the whole file
 * (duplicates, references, globs, key lines) is checked in load.ts, with the same paths.
 */
import { z } from 'zod';
import type { IssuePath } from './errors.ts';
import { closestWord } from '../words.ts';

/** Identity and group names: they appear in messages, logs, and by default as the Kubernetes
 *  user, so no spaces or control characters; `@` and `.` for e-mail-like names. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,252}$/;
const NAME_RULE = "letters, digits, '.', '_', '@', '+' and '-', starting with a letter or digit, at most 253 characters";

/** Printable ASCII: these strings end up in HTTP headers (Impersonate-*) and log lines. */
const PRINTABLE = /^[\x20-\x7e]+$/;

const name = z.string().regex(NAME_PATTERN, { error: `must be ${NAME_RULE}` });
const printable = (what: string) => z.string().min(1).regex(PRINTABLE, { error: `${what} must be printable ASCII` });
const text = z.string();
const list = <T extends z.ZodType>(item: T) => z.array(item);
const nonEmptyList = <T extends z.ZodType>(item: T) => z.array(item).min(1);

const groupSchema = z.strictObject({
  name,
  description: text.optional(),
});

const identitySchema = z.strictObject({
  name,
  description: text.optional(),
  keys: list(z.string()).optional(),
  principals: list(printable('a principal')).optional(),
  kubernetes: z
    .strictObject({
      user: printable('a Kubernetes user name').optional(),
      groups: list(printable('a Kubernetes group name')).optional(),
    })
    .optional(),
  groups: list(name).optional(),
});

const serial = z.union([z.number(), z.string()]);

const certificateAuthoritySchema = z.strictObject({
  name: name.optional(),
  key: z.string(),
  revoked: z
    .strictObject({
      serials: list(serial).optional(),
      keyIds: list(z.string()).optional(),
    })
    .optional(),
});

const ruleSchema = z.strictObject({
  name: printable('a rule name').optional(),
  description: text.optional(),
  identities: list(name).optional(),
  groups: list(name).optional(),
  namespaces: nonEmptyList(z.string()).optional(),
  pods: nonEmptyList(z.string()).optional(),
  workloads: nonEmptyList(z.string()).optional(),
  containers: nonEmptyList(z.string()).optional(),
  tty: z.boolean().optional(),
  commands: z.boolean().optional(),
  shell: z.boolean().optional(),
  fileTransfer: z.boolean().optional(),
  portForwarding: z.boolean().optional(),
  /** Watch live browser terminals in these places, read-only. */
  observe: z.boolean().optional(),
  /** With portForwarding: only these pod ports (numbers, or ranges "8000-8099"). */
  ports: nonEmptyList(
    z.union([
      z.number().int().min(1).max(65535),
      z.string().regex(/^[0-9]{1,5}-[0-9]{1,5}$/, { error: 'a port is a number 1-65535 or a range "LOW-HIGH"' }),
    ]),
  ).optional(),
  docker: z
    .strictObject({
      containers: nonEmptyList(z.string()).optional(),
      projects: nonEmptyList(z.string()).optional(),
      services: nonEmptyList(z.string()).optional(),
      labels: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
}).superRefine((rule, ctx) => {
  // Kubernetes rules name namespaces; a rule only about Docker containers names none.
  if (rule.namespaces === undefined && rule.docker === undefined) ctx.addIssue({ code: 'custom', path: ['namespaces'], message: 'is required (or docker, for a rule about Docker containers)' });
});

export const policyFileSchema = z.strictObject({
  version: z.literal(1, { error: 'must be 1 (the only version of this format)' }),
  groups: list(groupSchema).optional(),
  identities: list(identitySchema).optional(),
  certificateAuthorities: list(certificateAuthoritySchema).optional(),
  rules: list(ruleSchema).optional(),
});

export type PolicyFile = z.infer<typeof policyFileSchema>;
export type PolicyFileIdentity = z.infer<typeof identitySchema>;
export type PolicyFileRule = z.infer<typeof ruleSchema>;
export type PolicyFileCertificateAuthority = z.infer<typeof certificateAuthoritySchema>;

const kubernetesSchema = identitySchema.shape.kubernetes.unwrap();
const revokedSchema = certificateAuthoritySchema.shape.revoked.unwrap();
const dockerRuleSchema = ruleSchema.shape.docker.unwrap();

/** The fields an object at `path` may have, to suggest the intended one for a typo. */
function fieldsAt(path: IssuePath): string[] {
  const [top, , sub] = path;
  const shape =
    path.length === 0
      ? policyFileSchema.shape
      : top === 'groups'
        ? groupSchema.shape
        : top === 'identities'
          ? sub === 'kubernetes'
            ? kubernetesSchema.shape
            : identitySchema.shape
          : top === 'certificateAuthorities'
            ? sub === 'revoked'
              ? revokedSchema.shape
              : certificateAuthoritySchema.shape
            : sub === 'docker'
              ? dockerRuleSchema.shape
              : ruleSchema.shape;
  return Object.keys(shape);
}

export interface ShapeIssue {
  path: IssuePath;
  message: string;
  /** Report at the key's line (unknown fields) rather than the value's. */
  at: 'value' | 'key';
}

/** zod's issues, in words a person editing YAML understands. */
export function checkShape(value: unknown): { ok: true; file: PolicyFile } | { ok: false; issues: ShapeIssue[] } {
  const parsed = policyFileSchema.safeParse(value, { reportInput: true });
  if (parsed.success) return { ok: true, file: parsed.data };
  const issues: ShapeIssue[] = [];
  for (const issue of parsed.error.issues) {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) issues.push({ path: [...path, key], message: unknownField(key, fieldsAt(path)), at: 'key' });
      continue;
    }
    issues.push({ path, message: describeIssue(issue, path), at: 'value' });
  }
  return { ok: false, issues };
}

function describeIssue(issue: z.core.$ZodIssue, path: IssuePath): string {
  const input = 'input' in issue ? issue.input : undefined;
  if (issue.code === 'invalid_type') {
    if (path.length === 0) {
      return input === undefined || input === null
        ? 'the file is empty: a policy starts with "version: 1" (see docs/policy.md)'
        : 'a policy file is a mapping that starts with "version: 1" (see docs/policy.md)';
    }
    if (input === undefined) return 'is required';
    const got = describeValue(input);
    switch (issue.expected) {
      case 'string':
        return typeof input === 'number' || typeof input === 'boolean'
          ? `expected a string, got ${got}: quote it ("${String(input)}")`
          : `expected a string, got ${got}`;
      case 'boolean':
        return `expected true or false, got ${got}`;
      case 'array':
        return `expected a list, got ${got}`;
      case 'object':
        return `expected a mapping (field: value), got ${got}`;
      default:
        return `expected ${issue.expected}, got ${got}`;
    }
  }
  if (issue.code === 'too_small') return issue.origin === 'array' ? 'must not be an empty list' : 'must not be empty';
  if (issue.code === 'invalid_union' && path.at(-2) === 'serials') return `expected a serial number, got ${describeValue(input)}`;
  return issue.message;
}

function describeValue(v: unknown): string {
  if (v === null) return 'nothing (null)';
  if (Array.isArray(v)) return 'a list';
  if (Buffer.isBuffer(v)) return 'binary data';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

function unknownField(key: string, known: readonly string[]): string {
  const near = closestWord(key, known);
  return `unknown field${near ? ` (did you mean "${near}"?)` : ''}; fields here: ${known.join(', ')}`;
}


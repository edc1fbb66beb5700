/**
 * OpenSSH authorized_keys line syntax: `[options] keytype base64 [comment]`: the lexer only. The
 * access policy (src/policy) reads both authorized_keys files and the keys of a policy file
 * through this, and gives the options their meaning (policy/key-options.ts).
 */
import type { ParsedKey } from 'ssh2';
import { fingerprint, parsePublicKey } from './public-key.ts';

export interface AuthorizedKey {
  key: ParsedKey;
  blob: Buffer;
  fingerprint: string;
  comment: string | null;
  options: string[];
  line: number;
}

export interface AuthorizedKeysFile {
  keys: AuthorizedKey[];
  /** Lines that could not be used, with why: logged at load so a typo does not fail silently. */
  problems: Array<{ line: number; reason: string }>;
}

const KEY_TYPE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com|[a-z0-9-]+-cert-v01@openssh\.com)$/;

/** Splits the options prefix (comma-separated, double quotes may contain spaces and commas). */
function splitOptionsAndRest(line: string): { options: string[]; rest: string } | null {
  const firstWord = line.split(/\s+/, 1)[0] ?? '';
  if (KEY_TYPE.test(firstWord)) return { options: [], rest: line };
  const options: string[] = [];
  let cur = '';
  let quoted = false;
  let i = 0;
  for (; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '\\' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      options.push(cur);
      cur = '';
    } else if (ch === ' ' || ch === '\t') break;
    else cur += ch;
  }
  if (quoted) return null;
  options.push(cur);
  return { options, rest: line.slice(i).trim() };
}

export function parseAuthorizedKeys(text: string): AuthorizedKeysFile {
  const keys: AuthorizedKey[] = [];
  const problems: AuthorizedKeysFile['problems'] = [];
  text.split(/\r?\n/).forEach((rawLine, idx) => {
    const line = rawLine.trim();
    const lineNo = idx + 1;
    if (line === '' || line.startsWith('#')) return;
    const split = splitOptionsAndRest(line);
    if (!split) return problems.push({ line: lineNo, reason: 'unterminated quote in options' });
    const [type, b64, ...commentWords] = split.rest.split(/\s+/);
    if (!type || !b64 || !KEY_TYPE.test(type)) return problems.push({ line: lineNo, reason: 'no key type found' });
    if (split.options.some((o) => o.toLowerCase() === 'cert-authority') || type.endsWith('-cert-v01@openssh.com')) {
      return problems.push({ line: lineNo, reason: 'certificate authorities and certificates are not supported yet; line ignored' });
    }
    const key = parsePublicKey(`${type} ${b64}`);
    if (!key) return problems.push({ line: lineNo, reason: `cannot parse the ${type} key` });
    const blob = key.getPublicSSH();
    keys.push({
      key,
      blob,
      fingerprint: fingerprint(blob),
      comment: commentWords.length > 0 ? commentWords.join(' ') : null,
      options: split.options,
      line: lineNo,
    });
  });
  return { keys, problems };
}

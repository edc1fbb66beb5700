import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { parseAuthorizedKeys } from '../../src/openssh/authorized-keys-syntax.ts';
import { makeClientKey } from '../helpers/ssh-client.ts';

describe('authorized_keys', () => {
  const ed = makeClientKey('alice@laptop');
  const rsa = makeClientKey('bob', 'rsa');

  it('reads keys with and without options, comments with spaces, and fingerprints as ssh-keygen does', () => {
    const text = [
      '# a comment',
      '',
      ed.publicLine,
      `command="echo \\"hi, there\\"",from="10.0.0.0/8,127.0.0.1",no-pty ${rsa.publicLine} extra words`,
    ].join('\n');
    const { keys, problems } = parseAuthorizedKeys(text);
    assert.deepEqual(problems, []);
    assert.equal(keys.length, 2);
    assert.equal(keys[0]!.comment, 'alice@laptop');
    assert.deepEqual(keys[0]!.options, []);
    assert.equal(keys[1]!.comment, 'bob extra words');
    assert.deepEqual(keys[1]!.options, ['command=echo "hi, there"', 'from=10.0.0.0/8,127.0.0.1', 'no-pty']);
    assert.equal(keys[1]!.line, 4);
    const expected = execFileSync('ssh-keygen', ['-lf', `${ed.keyFile}.pub`]).toString().split(' ')[1];
    assert.equal(keys[0]!.fingerprint, expected);
  });

  it('reports unusable lines with their line number instead of failing the file', () => {
    const text = ['garbage here', 'ssh-ed25519 !!!notbase64', `cert-authority ${ed.publicLine}`, 'no-pty,"unterminated ssh-ed25519 AAAA', rsa.publicLine].join('\n');
    const { keys, problems } = parseAuthorizedKeys(text);
    assert.equal(keys.length, 1);
    assert.deepEqual(problems.map((p) => p.line), [1, 2, 3, 4]);
    assert.match(problems[2]!.reason, /certificate authorities/);
  });
});

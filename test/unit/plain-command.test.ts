import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { plainCommandWords } from '../../src/backends/exec/plain-command.ts';

/** What /bin/sh makes of a command's words: the reference the splitter must match. Only used
 *  for commands the splitter accepted, which hold no shell syntax, so embedding them is safe. */
function shWords(command: string): string[] {
  const script = `set -- ${command}; for w in "$@"; do printf '%s\\0' "$w"; done`;
  return spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' }).stdout.split('\0').slice(0, -1);
}

describe('plain commands for shell-less images', () => {
  it('splits words as sh does: quotes, escapes, runs of blanks', () => {
    assert.deepEqual(plainCommandWords(`/app/tool --name 'a  b' "c \\"d\\"" e\\ f`), ['/app/tool', '--name', 'a  b', 'c "d"', 'e f']);
    assert.deepEqual(plainCommandWords(`  ls   -l  `), ['ls', '-l']);
    assert.deepEqual(plainCommandWords(`echo ''`), ['echo', '']);
  });

  it('refuses anything a shell would interpret', () => {
    for (const c of ['a | b', 'a > f', 'a; b', 'a && b', 'echo $HOME', 'echo `id`', 'ls *', 'X=1 cmd', 'echo "$X"', "echo 'unterminated", 'echo ~', 'a\nb', '']) {
      assert.equal(plainCommandWords(c), null, c);
    }
  });

  it('property: where it accepts, /bin/sh agrees on the words', () => {
    const unit = fc.constantFrom('a', 'b', ' ', "'", '"', '\\', '-', '/', '=', '.', 'x y');
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 24 }), (cmd) => {
        const words = plainCommandWords(cmd);
        if (words === null) return;
        assert.deepEqual(words, shWords(cmd), JSON.stringify(cmd));
      }),
      { numRuns: 300 },
    );
  });
});

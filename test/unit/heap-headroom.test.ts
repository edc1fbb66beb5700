/**
 * The old generation's headroom (src/heap-headroom.ts): in a real Node process with real full
 * collections, the growing percent follows the live heap after each one: the room a small heap
 * needs while it is small, V8's own factor once a large live heap gives that room by itself, and
 * back again when the heap shrinks. What it does to a transfer (full collections per GiB, CPU per
 * GiB) is measured by `npm run bench`, which counts the bridge's collections per round.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { growingPercent, HEADROOM_BYTES, MAX_PERCENT } from '../../src/heap-headroom.ts';
import { compiled } from '../helpers/paths.ts';

const MiB = 1024 * 1024;

/** Runs `body` in a fresh node with --expose-gc and the compiled module as `hh`; its stdout. */
function inNode(body: string, flags: string[] = ['--expose-gc']): string {
  const url = new URL(`file://${compiled('src/heap-headroom.ts')}`).href;
  const script = `const hh = await import(${JSON.stringify(url)});\n${body}`;
  return execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
}

describe('heap headroom', () => {
  it('gives a small heap 64 MiB of room, at most 4×, and leaves large heaps to V8', () => {
    assert.equal(growingPercent(16 * MiB), MAX_PERCENT);
    assert.equal(growingPercent(32 * MiB), 200);
    assert.equal(growingPercent(64 * MiB), 100);
    assert.equal(growingPercent(100 * MiB), Math.ceil((HEADROOM_BYTES * 100) / (100 * MiB)));
    assert.equal(growingPercent(200 * MiB), 0, 'a 200 MiB heap: V8 decides');
    assert.equal(growingPercent(0), MAX_PERCENT);
  });

  it('follows the live heap after each real full collection', () => {
    const out = inNode(`
      const wait = () => new Promise((r) => setTimeout(r, 50));
      hh.keepHeapHeadroom();
      const seen = [hh.heapGrowingPercent()];
      // 240 MiB of live arrays (1 MiB of small integers each) on the V8 heap, then a full collection.
      let keep = [];
      for (let i = 0; i < 240; i++) keep.push(new Array(128 * 1024).fill(i));
      gc(); await wait();
      seen.push(hh.heapGrowingPercent());
      keep = null;
      gc(); await wait();
      seen.push(hh.heapGrowingPercent());
      console.log(JSON.stringify(seen));
    `);
    const [atStart, large, small] = JSON.parse(out) as number[];
    assert.ok(atStart! >= 100, `a fresh process's heap gets at least 100%: ${out}`);
    assert.equal(large, 0, `with 240 MiB live, V8's own factor: ${out}`);
    assert.equal(small, atStart, `the same room again once the heap is small: ${out}`);
  });
});

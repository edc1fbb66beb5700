/**
 * Deadline (src/session/duration.ts): a limit with an advance warning on one timer at a time, as
 * the maximum session duration and the maximum connection lifetime use it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Deadline } from '../../src/session/duration.ts';

describe('Deadline', () => {
  it('warns warningMs before the limit, then reaches the limit on time', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const seen: string[] = [];
    new Deadline(10_000, 3_000, () => seen.push('warning'), () => seen.push('limit'));
    t.mock.timers.tick(6_999);
    assert.deepEqual(seen, []);
    t.mock.timers.tick(1);
    assert.deepEqual(seen, ['warning']);
    t.mock.timers.tick(2_999);
    assert.deepEqual(seen, ['warning']);
    t.mock.timers.tick(1);
    assert.deepEqual(seen, ['warning', 'limit']);
  });

  it('gives no warning when the limit is not longer than the warning, or the warning is 0', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const seen: string[] = [];
    new Deadline(2_000, 3_000, () => seen.push('warning a'), () => seen.push('limit a'));
    new Deadline(2_000, 0, () => seen.push('warning b'), () => seen.push('limit b'));
    t.mock.timers.tick(2_000);
    assert.deepEqual(seen, ['limit a', 'limit b']);
  });

  it('clear() stops it before the warning and between the warning and the limit', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const seen: string[] = [];
    const early = new Deadline(10_000, 3_000, () => seen.push('early warning'), () => seen.push('early limit'));
    const late = new Deadline(10_000, 3_000, () => seen.push('late warning'), () => seen.push('late limit'));
    early.clear();
    t.mock.timers.tick(7_000);
    late.clear();
    t.mock.timers.tick(10_000);
    assert.deepEqual(seen, ['late warning']);
  });
});

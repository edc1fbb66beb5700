/** The per-source back-off: what counts as one source, and what a success does (nothing). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SourceBackoff, sourceKey } from '../../src/ssh/limits.ts';

const opts = { threshold: 3, windowMs: 60_000, baseMs: 5_000, maxMs: 300_000 };

describe('sourceKey', () => {
  it('keeps IPv4 addresses whole and maps IPv4-mapped IPv6 to them', () => {
    assert.equal(sourceKey('192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(sourceKey('::FFFF:192.0.2.7'), '192.0.2.7');
  });

  it('charges an IPv6 address to its /64, however it is written', () => {
    assert.equal(sourceKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:0db8:0001:0002::1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:db8:1:2::ffff:1.2.3.4'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(sourceKey('::1'), '0:0:0:0::/64');
    assert.notEqual(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'));
  });
});

describe('SourceBackoff', () => {
  it('blocks a /64 whose addresses rotate with every attempt', () => {
    const b = new SourceBackoff(opts);
    const t = 1_000_000;
    assert.equal(b.fail('2001:db8:1:2::1', t), 0);
    assert.equal(b.fail('2001:db8:1:2::2', t + 1), 0);
    assert.equal(b.fail('2001:db8:1:2:ffff::3', t + 2), 5_000);
    assert.ok(b.blockedFor('2001:db8:1:2:dead:beef:0:9', t + 3) > 0, 'any address of the /64 waits');
    assert.equal(b.blockedFor('2001:db8:1:3::1', t + 3), 0, 'the neighbouring /64 does not');
  });

  it('keeps failures for their window whatever succeeds in between (there is no reset)', () => {
    const b = new SourceBackoff(opts);
    const t = 1_000_000;
    b.fail('198.51.100.4', t);
    b.fail('198.51.100.4', t + 10);
    assert.equal('succeed' in b, false, 'a success has nothing to reset');
    assert.equal(b.fail('198.51.100.4', t + 20), 5_000);
    // Failures older than the window no longer count.
    const later = t + 20 + 5_000 + opts.windowMs;
    assert.equal(b.fail('198.51.100.4', later), 0);
  });

  it('doubles the wait for a source that keeps failing, and forgets after a long quiet spell', () => {
    const b = new SourceBackoff(opts);
    let t = 1_000_000;
    const burst = () => {
      let wait = 0;
      for (let i = 0; i < opts.threshold; i++) wait = b.fail('203.0.113.9', t++);
      return wait;
    };
    assert.equal(burst(), 5_000);
    t += 5_000;
    assert.equal(burst(), 10_000);
    t += 10_000 + opts.maxMs + 1;
    assert.equal(burst(), 5_000);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConnectionRateLimiter } from '../../src/ssh/connection-rate.ts';

describe('ConnectionRateLimiter (DHEat)', () => {
  it('admits a burst, then the sustained rate, per address', () => {
    const l = new ConnectionRateLimiter({ perSecond: 5, burst: 10 });
    const t = 1_000_000;
    for (let i = 0; i < 10; i++) assert.equal(l.admit('10.0.0.1', t).admitted, true);
    assert.equal(l.admit('10.0.0.1', t).admitted, false);
    assert.equal(l.admit('10.0.0.2', t).admitted, true, 'another address has its own bucket');
    assert.equal(l.admit('10.0.0.1', t + 100).admitted, false, '0.5 token after 100 ms');
    assert.equal(l.admit('10.0.0.1', t + 200).admitted, true, 'one token after 200 ms at 5/s');
    // A flood for 1.5 s (as ssh-audit's DHEat test) gets burst + 1.5 s x rate, under 20/s.
    const f = new ConnectionRateLimiter({ perSecond: 5, burst: 10 });
    let opened = 0;
    for (let ms = 0; ms < 1500; ms += 1) if (f.admit('10.9.9.9', t + ms).admitted) opened++;
    assert.ok(opened <= 18 && opened / 1.5 < 20, `opened ${opened}`);
  });

  it('gives the token back when the connection authenticates (NAT, scripted loops, ControlMaster)', () => {
    const l = new ConnectionRateLimiter({ perSecond: 1, burst: 3 });
    const t = 5_000_000;
    for (let i = 0; i < 100; i++) {
      assert.equal(l.admit('192.0.2.7', t + i).admitted, true, `login ${i}`);
      l.refund('192.0.2.7', t + i);
    }
  });

  it('logs a refusal once per address per 10 s, with the count refused since', () => {
    const l = new ConnectionRateLimiter({ perSecond: 1, burst: 1 });
    const t = 9_000_000;
    l.admit('a', t);
    assert.deepEqual(l.admit('a', t), { admitted: false, log: true, refusedSinceLog: 1 });
    assert.deepEqual(l.admit('a', t + 10), { admitted: false, log: false, refusedSinceLog: 1 });
    assert.deepEqual(l.admit('a', t + 20), { admitted: false, log: false, refusedSinceLog: 2 });
    l.admit('a', t + 10_500); // refilled: admitted
    assert.deepEqual(l.admit('a', t + 10_500), { admitted: false, log: true, refusedSinceLog: 3 });
  });

  it('is off at 0 per second and keeps memory bounded', () => {
    const off = new ConnectionRateLimiter({ perSecond: 0, burst: 1 });
    for (let i = 0; i < 50; i++) assert.equal(off.admit('x').admitted, true);
    assert.equal(off.size, 0);
    const l = new ConnectionRateLimiter({ perSecond: 1, burst: 2 }, 100);
    for (let i = 0; i < 1000; i++) l.admit(`198.51.100.${i}`, 1000 + i);
    assert.ok(l.size <= 100, `tracked ${l.size}`);
  });

  it('charges an IPv6 /64 as one source, and IPv4-mapped IPv6 as its IPv4 address (as the back-off)', () => {
    const l = new ConnectionRateLimiter({ perSecond: 1, burst: 2 });
    const t = 12_000_000;
    assert.equal(l.admit('2001:db8:1:2::a', t).admitted, true);
    assert.equal(l.admit('2001:db8:1:2:ffff::b', t).admitted, true);
    assert.equal(l.admit('2001:db8:1:2::c', t).admitted, false, 'a third address in the same /64 finds the bucket empty');
    assert.equal(l.admit('2001:db8:1:3::a', t).admitted, true, 'the next /64 has its own bucket');
    l.refund('2001:db8:1:2::99', t);
    assert.equal(l.admit('2001:db8:1:2::c', t).admitted, true, 'a refund from any address of the /64 goes back to its bucket');
    assert.equal(l.admit('192.0.2.9', t).admitted, true);
    assert.equal(l.admit('::ffff:192.0.2.9', t).admitted, true);
    assert.equal(l.admit('192.0.2.9', t).admitted, false, 'the mapped spelling took from the same bucket');
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePermitOpen, permitOpenAllows } from '../../src/policy/permit-open.ts';
import { meansThePod } from '../../src/forwarding/destination.ts';

describe('permitopen= as sshd reads it', () => {
  const parse = (v: string) => {
    const p = parsePermitOpen(v);
    assert.ok(p.ok, `${v}: ${p.ok ? '' : p.problem}`);
    return p.permit;
  };
  it('host:port, [v6]:port, * for the port or the host', () => {
    assert.deepEqual(parse('localhost:80'), { host: 'localhost', port: 80 });
    assert.deepEqual(parse('[::1]:5432'), { host: '::1', port: 5432 });
    assert.deepEqual(parse('localhost:*'), { host: 'localhost', port: null });
    assert.deepEqual(parse('*:8080'), { host: '*', port: 8080 });
  });
  it('refuses what sshd refuses: no port, a bad port, no host', () => {
    for (const bad of ['localhost', 'localhost:0', 'localhost:70000', 'localhost:http', ':80', '[::1]80']) {
      assert.equal(parsePermitOpen(bad).ok, false, bad);
    }
  });
  it('matches the requested host as a string and the port exactly; none listed allows all', () => {
    const list = [parse('localhost:80'), parse('127.0.0.1:*')];
    assert.equal(permitOpenAllows(list, 'localhost', 80), true);
    assert.equal(permitOpenAllows(list, 'localhost', 81), false);
    assert.equal(permitOpenAllows(list, '127.0.0.1', 9999), true);
    assert.equal(permitOpenAllows(list, '::1', 80), false);
    assert.equal(permitOpenAllows(null, 'anything', 1), true);
    assert.equal(permitOpenAllows([parse('*:22')], '::1', 22), true);
  });
});

describe('destinations that mean the pod', () => {
  it('loopback names only', () => {
    for (const h of ['localhost', 'LOCALHOST', '127.0.0.1', '::1']) assert.equal(meansThePod(h), true, h);
    for (const h of ['10.0.0.1', '127.0.0.2', 'kubernetes.default', '0.0.0.0', '', 'localhost.', '[::1]']) assert.equal(meansThePod(h), false, h);
  });
});

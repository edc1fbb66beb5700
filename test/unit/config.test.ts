import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildConfig, envAccepted, parseListen } from '../../src/config.ts';

describe('config', () => {
  it('parses listen addresses in every documented form', () => {
    assert.deepEqual(parseListen('127.0.0.1:2222'), { host: '127.0.0.1', port: 2222 });
    assert.deepEqual(parseListen('[::1]:22'), { host: '::1', port: 22 });
    assert.deepEqual(parseListen(':2200'), { host: '127.0.0.1', port: 2200 });
    assert.deepEqual(parseListen('2201'), { host: '127.0.0.1', port: 2201 });
    assert.deepEqual(parseListen('0.0.0.0:0'), { host: '0.0.0.0', port: 0 });
    for (const bad of ['', 'host', 'host:', 'h:70000', '::1:22', 'a:b']) {
      assert.throws(() => parseListen(bad), new RegExp(`invalid listen address "${bad.replace(/[[\]]/g, '\\$&')}"`));
    }
  });

  it('has safe defaults: loopback, ed25519 host key in keys/, auto backend, keepalives on', () => {
    const c = buildConfig({});
    assert.deepEqual(c.listen, { host: '127.0.0.1', port: 2222 });
    assert.equal(c.listenExplicit, false);
    assert.deepEqual(c.hostKeys, ['keys/ssh_host_ed25519_key']);
    assert.equal(c.backend, 'auto');
    assert.ok(c.ssh.keepaliveIntervalMs > 0 && c.ssh.keepaliveIntervalMs < 60_000, 'keepalive below common LB idle cut (60 s)');
    assert.match(c.authorizedKeys, /\.ssh\/authorized_keys$/);
  });

  it('names the setting that is wrong', () => {
    assert.throws(() => buildConfig({ backend: 'podman' }), /invalid configuration: backend:/);
    assert.throws(() => buildConfig({ acceptEnv: ['LANG;rm'] }), /invalid configuration: session\.acceptEnv\.0/);
    assert.throws(() => buildConfig({ loginGraceTime: 0 }), /invalid configuration: ssh\.loginGraceMs/);
  });

  it('matches AcceptEnv patterns like sshd', () => {
    const p = ['LANG', 'LC_*', 'X?'];
    assert.ok(envAccepted('LANG', p));
    assert.ok(envAccepted('LC_ALL', p));
    assert.ok(envAccepted('XY', p));
    assert.ok(!envAccepted('LANGUAGE', p));
    assert.ok(!envAccepted('PATH', p));
    assert.ok(!envAccepted('LD_PRELOAD', p));
    assert.ok(!envAccepted('XYZ', p));
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildConfig, loadConfig, parseListen } from '../../src/config.ts';
import { envAccepted } from '../../src/env-patterns.ts';
import { SETTING_NAMES, envName, flagName } from '../../src/settings.ts';
import { CONFIGURATION_DOC, renderConfigurationDoc } from '../tools/update-docs.ts';

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

  it('names the setting that is wrong as the user wrote it: flag, environment variable or file key', () => {
    assert.throws(() => loadConfig({ flags: { backend: 'podman' } }), { message: '--backend "podman": expected one of auto, kubernetes, local, docker, kubernetes+docker, docker+kubernetes' });
    assert.throws(() => loadConfig({ flags: { backend: 'dokcer' } }), /--backend "dokcer": expected one of .* \(did you mean docker\?\)$/);
    assert.throws(() => loadConfig({ flags: { acceptEnv: ['LANG;rm'] } }), { message: '--accept-env "LANG;rm": "LANG;rm" is not a variable name or pattern (letters, digits, _, * and ?)' });
    assert.throws(() => loadConfig({ flags: { idleTimeout: 'abc' } }), { message: '--idle-timeout "abc": expected a number of seconds' });
    assert.throws(() => loadConfig({ env: { PODBRIDGE_MAX_SESSIONS: '0' } }), { message: 'PODBRIDGE_MAX_SESSIONS="0": must be at least 1' });
    assert.throws(() => loadConfig({ env: { PODBRIDGE_IDLE_TIMOUT: '3' } }), { message: 'PODBRIDGE_IDLE_TIMOUT: no such setting (did you mean PODBRIDGE_IDLE_TIMEOUT?); unset it' });
    assert.throws(() => loadConfig({ flags: { loginGraceTime: '0' } }), { message: '--login-grace-time "0": must be at least 1 second' });
    assert.throws(() => loadConfig({ flags: { kex: ['foo'] } }), /--kex: "foo" is not supported; choose from /);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-config-'));
    try {
      const file = path.join(dir, 'podbridge.yaml');
      fs.writeFileSync(file, 'listen: 0.0.0.0:2200\nidle-timeout: soon\n');
      assert.throws(() => loadConfig({ configFile: file }), { message: `${file}: idle-timeout: expected a number of seconds` });
      fs.writeFileSync(file, 'idel-timeout: 3\n');
      assert.throws(() => loadConfig({ configFile: file }), { message: `${file}: idel-timeout: no such setting (did you mean idle-timeout?)` });
      fs.writeFileSync(file, '- a\n- b\n');
      assert.throws(() => loadConfig({ configFile: file }), { message: `${file}: expected settings as "name: value" lines` });
      assert.throws(() => loadConfig({ configFile: path.join(dir, 'missing.yaml') }), { message: `${path.join(dir, 'missing.yaml')}: no such file` });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes flags over the environment over the file over defaults', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-config-'));
    try {
      const file = path.join(dir, 'podbridge.yaml');
      fs.writeFileSync(file, 'idle-timeout: 10\nmaxSessions: 3\nlisten: 0.0.0.0:2200\naccept-env: [LANG, TZ]\n');
      const c = loadConfig({ flags: { idleTimeout: '30' }, env: { PODBRIDGE_IDLE_TIMEOUT: '20', PODBRIDGE_MAX_SESSIONS: '4' }, configFile: file });
      assert.equal(c.session.idleTimeoutMs, 30_000);
      assert.equal(c.ssh.maxSessionsPerConnection, 4);
      assert.deepEqual(c.listen, { host: '0.0.0.0', port: 2200 });
      assert.equal(c.listenExplicit, true);
      assert.deepEqual(c.session.acceptEnv, ['LANG', 'TZ']);
      assert.equal(c.ssh.maxAuthTries, 6);
      assert.deepEqual(loadConfig({ env: { PODBRIDGE_ACCEPT_ENV: 'LANG, LC_*  TZ' } }).session.acceptEnv, ['LANG', 'LC_*', 'TZ']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('docs/configuration.md lists every setting exactly as the settings table says (npm run docs rewrites it)', () => {
    const doc = fs.readFileSync(CONFIGURATION_DOC, 'utf8');
    assert.equal(doc, renderConfigurationDoc(doc), 'docs/configuration.md is out of date: run npm run docs');
    for (const name of SETTING_NAMES) {
      assert.ok(doc.includes(`\`--${flagName(name)}\``), `--${flagName(name)} is documented`);
      assert.ok(doc.includes(`\`${envName(name)}\``), `${envName(name)} is documented`);
    }
  });

  it('refuses --accept-env patterns that could match the exec wrapper\'s own names, in one line naming the option', () => {
    for (const pattern of ['*', 'P*', 'PODBRIDGE_SESSION', 'PODBRIDGE_*', 'pb_*', 'p?_s', '*_SESSION', '*S*']) {
      assert.throws(() => buildConfig({ acceptEnv: ['LANG', pattern] }), (err: Error) => {
        assert.match(err.message, new RegExp(`^accept-env "LANG ${pattern.replace(/[*?]/g, '\\$&')}": "${pattern.replace(/[*?]/g, '\\$&')}" could match PODBRIDGE_\\* or pb_\\*`));
        assert.ok(!err.message.includes('\n'), 'one line');
        return true;
      });
    }
    // Narrow patterns, including the short names a wrapper counter once used, are fine now.
    for (const pattern of ['LC_*', 'n', 'i', '?', 'X?', 'TZ', 'PB_*', 'pod*']) assert.doesNotThrow(() => buildConfig({ acceptEnv: [pattern] }), pattern);
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

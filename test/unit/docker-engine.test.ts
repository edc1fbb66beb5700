/** Pure parts of the Docker backend: the login grammar's Docker forms, the endpoint rules of the
 *  Docker CLI, API version negotiation, the multiplexed-stream parser, and error wording. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BridgeError } from '../../src/errors.ts';
import { DOCKER_TARGET_GRAMMAR, TARGET_GRAMMAR, formatTarget, parseTarget } from '../../src/target.ts';
import { resolveEndpoint } from '../../src/backends/docker/endpoint.ts';
import { EngineError, MIN_API_VERSION, MAX_API_VERSION, negotiateVersion } from '../../src/backends/docker/engine.ts';
import { engineFailure } from '../../src/backends/docker/docker-errors.ts';
import { FrameDemuxer } from '../../src/backends/docker/multiplex.ts';
import { authorize, parsePolicy, resolveKey, type AccessRequest } from '../../src/policy/index.ts';

function refusal(raw: string, engine: 'docker' | 'kubernetes' = 'docker'): string {
  try {
    parseTarget(raw, { defaultEngine: engine });
  } catch (err) {
    assert.ok(err instanceof BridgeError);
    assert.equal(err.code, 'invalid-target');
    assert.doesNotMatch(err.message, /\n/);
    return err.message;
  }
  assert.fail(`${raw} parsed`);
}

test('Docker login names: container, ID prefix, Compose service and replica, with and without docker~', () => {
  assert.deepEqual(parseTarget('web', { defaultEngine: 'docker' }).docker, { kind: 'container', name: 'web' });
  assert.deepEqual(parseTarget('My_App-1', { defaultEngine: 'docker' }).docker, { kind: 'container', name: 'My_App-1' });
  assert.deepEqual(parseTarget('4f2a9c', { defaultEngine: 'docker' }).docker, { kind: 'container', name: '4f2a9c' });
  assert.deepEqual(parseTarget('shop.web', { defaultEngine: 'docker' }).docker, { kind: 'compose', project: 'shop', service: 'web', replica: null });
  assert.deepEqual(parseTarget('shop.web+2', { defaultEngine: 'docker' }).docker, { kind: 'compose', project: 'shop', service: 'web', replica: 2 });
  // A part before the dot that cannot be a Compose project: the whole is a container name.
  assert.deepEqual(parseTarget('My.app', { defaultEngine: 'docker' }).docker, { kind: 'container', name: 'My.app' });
  // On a Kubernetes bridge the prefix selects Docker; unprefixed names keep their meaning.
  assert.deepEqual(parseTarget('docker~shop.web+1').docker, { kind: 'compose', project: 'shop', service: 'web', replica: 1 });
  assert.equal(parseTarget('team-a.web').docker, undefined);
  assert.equal(parseTarget('team-a.web').namespace, 'team-a');
  const k = parseTarget('k8s~team-a.web-1', { defaultEngine: 'docker' });
  assert.equal(k.docker, undefined);
  assert.deepEqual([k.namespace, k.ref.name, k.raw], ['team-a', 'web-1', 'k8s~team-a.web-1']);
  for (const raw of ['docker~web', 'docker~shop.web+3', 'docker~My.app']) assert.equal(formatTarget(parseTarget(raw)), raw);
});

test('Docker login names: one-line errors that say what is wrong', () => {
  assert.match(refusal('web/x'), /Docker names have no '\/'/);
  assert.match(refusal('web+2'), /a replica number \(\+N\) follows only PROJECT\.SERVICE/);
  assert.match(refusal('shop.web+0'), /replica "0" after '\+' is not a number from 1 to 99999/);
  assert.match(refusal('shop.web+1+2'), /more than one '\+'/);
  assert.match(refusal('.web'), /container name "\.web" starts with '\.'/);
  assert.match(refusal('web:1'), /it has ':': Docker names are letters, digits, '_', '\.' and '-'/);
  assert.match(refusal('docker~'), /nothing follows 'docker~'/);
  assert.match(refusal('podman~web', 'kubernetes'), /unknown backend "podman" before '~' \(docker or k8s\)/);
  assert.ok(refusal('web/x').endsWith(`; expected ${DOCKER_TARGET_GRAMMAR}`));
  assert.ok(refusal('podman~web', 'kubernetes').endsWith(`; expected ${TARGET_GRAMMAR}`));
});

test('endpoint: --docker-host, DOCKER_HOST, DOCKER_CONTEXT and config.json currentContext, as the Docker CLI', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-dockercfg-'));
  try {
    const cfg = path.join(home, '.docker');
    const id = createHash('sha256').update('prod').digest('hex');
    fs.mkdirSync(path.join(cfg, 'contexts', 'meta', id), { recursive: true });
    fs.writeFileSync(path.join(cfg, 'contexts', 'meta', id, 'meta.json'), JSON.stringify({ Name: 'prod', Endpoints: { docker: { Host: 'tcp://prod.example:2376', SkipTLSVerify: false } } }));
    fs.mkdirSync(path.join(cfg, 'contexts', 'tls', id, 'docker'), { recursive: true });
    fs.writeFileSync(path.join(cfg, 'contexts', 'tls', id, 'docker', 'ca.pem'), 'CA');
    fs.writeFileSync(path.join(cfg, 'config.json'), JSON.stringify({ currentContext: 'prod' }));

    assert.deepEqual(resolveEndpoint({}, {}, '/nonexistent').endpoint, { kind: 'unix', socketPath: '/var/run/docker.sock', url: 'unix:///var/run/docker.sock' });
    const current = resolveEndpoint({}, {}, home);
    assert.equal(current.source, 'context "prod"');
    assert.equal(current.endpoint.kind === 'tcp' && current.endpoint.tls?.ca?.toString(), 'CA');
    assert.equal(current.endpoint.kind === 'tcp' && `${current.endpoint.host}:${current.endpoint.port}`, 'prod.example:2376');
    // DOCKER_HOST wins over contexts; --docker-host over everything.
    assert.equal(resolveEndpoint({}, { DOCKER_HOST: 'unix:///run/d.sock' }, home).source, 'DOCKER_HOST');
    assert.equal(resolveEndpoint({ host: 'tcp://127.0.0.1:2375' }, { DOCKER_HOST: 'unix:///run/d.sock' }, home).endpoint.url, 'tcp://127.0.0.1:2375');
    assert.equal(resolveEndpoint({}, { DOCKER_CONTEXT: 'default' }, home).endpoint.url, 'unix:///var/run/docker.sock');
    assert.throws(() => resolveEndpoint({}, { DOCKER_CONTEXT: 'nope' }, home), /Docker context "nope" \(from DOCKER_CONTEXT\): cannot read .*meta\.json: it does not exist \(see docker context ls\)/);
    assert.throws(() => resolveEndpoint({ host: 'ssh://me@host' }, {}, home), /ssh:\/\/ Docker hosts are not supported; forward the Engine's socket/);
    // DOCKER_TLS_VERIFY with DOCKER_CERT_PATH, as the CLI reads them.
    const tls = resolveEndpoint({}, { DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: path.join(cfg, 'contexts', 'tls', id, 'docker') }, home).endpoint;
    assert.equal(tls.kind === 'tcp' && tls.tls?.verify, true);
    assert.equal(tls.kind === 'tcp' && tls.tls?.ca?.toString(), 'CA');
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test('API versions: min(Engine, ours); an Engine below the minimum is refused', () => {
  assert.equal(negotiateVersion('1.41'), '1.41');
  assert.equal(negotiateVersion('1.99'), MAX_API_VERSION);
  assert.equal(negotiateVersion(MIN_API_VERSION), MIN_API_VERSION);
  assert.equal(negotiateVersion('1.24'), null);
  // Docker 29 refuses clients below 1.44: our ceiling must reach it.
  assert.ok(Number(MAX_API_VERSION.split('.')[1]) >= 44);
});

test('multiplexed stream: frames split at every byte boundary come out whole and in order', () => {
  const frame = (stream: number, text: string) => {
    const payload = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = stream;
    head.writeUInt32BE(payload.length, 4);
    return Buffer.concat([head, payload]);
  };
  const wire = Buffer.concat([frame(1, 'hello '), frame(2, 'oops'), frame(1, ''), frame(1, 'world'), frame(3, 'engine says no')]);
  for (let cut = 1; cut <= wire.length; cut++) {
    const got: Record<number, string> = { 1: '', 2: '', 3: '' };
    const d = new FrameDemuxer((s, p) => (got[s] = (got[s] ?? '') + p.toString()));
    for (let i = 0; i < wire.length; i += cut) d.feed(wire.subarray(i, i + cut));
    assert.deepEqual(got, { 1: 'hello world', 2: 'oops', 3: 'engine says no' }, `chunks of ${cut}`);
    assert.ok(d.atBoundary);
  }
});

test('Engine failures in the user\'s words: socket permission, missing socket, refused', () => {
  const ep = { kind: 'unix' as const, socketPath: '/var/run/docker.sock', url: 'unix:///var/run/docker.sock' };
  assert.match(engineFailure(new EngineError('connect EACCES', null, 'EACCES'), ep, 'x').message, /^podbridge may not use the Docker Engine socket \/var\/run\/docker\.sock: permission denied; the bridge's user needs access to it \(the docker group, which is root-equivalent: see docs\/docker\.md\)$/);
  assert.match(engineFailure(new EngineError('connect ENOENT', null, 'ENOENT'), ep, 'x').message, /\/var\/run\/docker\.sock does not exist; is dockerd running/);
  assert.match(engineFailure(new EngineError('connect ECONNREFUSED', null, 'ECONNREFUSED'), ep, 'x').message, /connection refused; is dockerd running\?/);
});

test('policy: rules name Docker containers, Compose projects and labels; capabilities as for pods', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-dockerpol-'));
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice', '-f', path.join(dir, 'k')]);
    const line = fs.readFileSync(path.join(dir, 'k.pub'), 'utf8').trim();
    const policy = parsePolicy(
      `version: 1
identities:
  - name: alice
    keys: ["${line}"]
rules:
  - identities: [alice]
    namespaces: [team-a]
    pods: ["*"]
    shell: true
  - identities: [alice]
    docker:
      projects: [shop]
      labels: { team: "a*" }
    commands: true
  - identities: [alice]
    docker:
      containers: ["Web_*"]
    shell: true
    tty: true
`,
      'policy.yaml',
    );
    const blob = Buffer.from(line.split(' ')[1] ?? '', 'base64');
    const r = resolveKey(policy, blob, '192.0.2.1', new Date());
    assert.ok(r.ok);
    const target = { ...parseTarget('docker~shop.web'), namespace: '' };
    const facts = { name: 'shop-web-1', id: 'abc', project: 'shop', service: 'web', labels: { team: 'alpha' } };
    const ask = (more: Partial<AccessRequest>) => authorize(policy, r.identity, { target, action: 'command', tty: false, container: null, ...more });
    // Before resolution: pending (a rule may allow it once the container is known).
    const first = ask({});
    assert.equal(first.allowed, false);
    assert.equal(!first.allowed && first.pending, true);
    assert.deepEqual(ask({ docker: facts }), { allowed: true, rule: 2 });
    const shell = ask({ docker: facts, action: 'shell' });
    assert.equal(shell.allowed, false);
    assert.match(!shell.allowed ? shell.message : '', /identity "alice" may not open a shell in Docker container "shop-web-1": no rule that reaches it grants shell/);
    const wrongLabel = ask({ docker: { ...facts, labels: { team: 'b' } } });
    assert.match(!wrongLabel.allowed ? wrongLabel.message : '', /no rule allows Docker container "shop-web-1" \(Compose project "shop"\)/);
    assert.equal(ask({ docker: { ...facts, name: 'Web_1', project: null, service: null, labels: {} }, action: 'shell', tty: true }).allowed, true);
    // A Kubernetes rule never reaches a Docker container, and a Docker rule never a pod.
    assert.match(JSON.stringify(ask({ docker: { ...facts, project: 'other' } })), /no rule allows Docker container/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

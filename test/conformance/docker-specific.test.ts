/**
 * What only the Docker backend has, against a real dockerd: the login grammar reaching the right
 * container (name, ID prefix, Compose replicas, docker~ prefix), nothing left in the container
 * after a disconnect, a container that stops or is removed ending the session with one line,
 * and the Engine going away and coming back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import ssh2 from 'ssh2';
import crypto from 'node:crypto';
import { startTestBridge, type TestBridge } from '../helpers/bridge.ts';
import { startTestCluster } from '../helpers/cluster.ts';
import { InteractiveSsh, runSsh, sshArgs } from '../helpers/ssh-client.ts';
import { TEST_IMAGE } from '../helpers/dockerd.ts';
import { startDockerWorld, type DockerWorld } from './docker-harness.ts';
import { waitUntil } from '../helpers/wait.ts';

describe('docker backend: grammar, lifecycle, Engine failures (real dockerd)', () => {
  let w: DockerWorld;
  const ssh = (login: string, command: string, timeoutMs = 60_000) => runSsh({ port: w.bridge.port, key: w.bridge.key, login, command, timeoutMs });
  const hostnameOf = async (name: string) => (await w.dockerd.docker(['inspect', '-f', '{{.Config.Hostname}}', name])).trim();
  /** Processes in the container whose command line holds `marker`, as `ps` inside it sees them. */
  const psGrep = async (container: string, marker: string) =>
    (await w.dockerd.docker(['exec', container, 'ps', '-o', 'pid,args'])).split('\n').filter((l) => l.includes(marker) && !l.includes('ps -o'));

  before(async () => {
    w = await startDockerWorld({}, { tls: true });
  });
  after(async () => {
    await w?.close();
  });

  it('reaches a container by name, by ID prefix, with the docker~ prefix, and Compose replicas by PROJECT.SERVICE[+N]', async () => {
    const web = await hostnameOf('web');
    const id = (await w.dockerd.docker(['inspect', '-f', '{{.Id}}', 'web'])).trim();
    for (const login of ['web', 'docker~web', id.slice(0, 10)]) {
      const r = await ssh(login, 'hostname');
      assert.equal(r.stdout.toString().trim(), web, `${login}: ${r.stderr}`);
      assert.equal(r.code, 0);
    }
    assert.equal((await ssh('shop.web', 'hostname')).stdout.toString().trim(), await hostnameOf('shop-web-1'), 'without +N: the lowest running replica');
    assert.equal((await ssh('shop.web+2', 'hostname')).stdout.toString().trim(), await hostnameOf('shop-web-2'));
    assert.equal((await ssh('docker~shop.web+1', 'hostname')).stdout.toString().trim(), await hostnameOf('shop-web-1'));
  });

  it('refuses a name Docker cannot have, and +N on a plain container, with one line', async () => {
    const bad = await ssh('web/x', 'true');
    assert.match(bad.stderr, /^podbridge: invalid login name "web\/x": Docker names have no '\/' \(a Compose service is PROJECT\.SERVICE\); expected CONTAINER \(a name or ID prefix\), PROJECT\.SERVICE or PROJECT\.SERVICE\+N, optionally after docker~\n$/);
    assert.equal(bad.code, 255);
    const prefix = await ssh('web+2', 'true');
    assert.match(prefix.stderr, /a replica number \(\+N\) follows only PROJECT\.SERVICE/);
  });

  it('runs a plain command in an image without /bin/sh, and says a shell cannot open there', async () => {
    const r = await ssh('distroless', '/usr/bin/busybox echo plain works');
    assert.equal(r.stdout.toString(), 'plain works\n');
    assert.equal(r.code, 0);
    const shell = await runSsh({ port: w.bridge.port, key: w.bridge.key, login: 'distroless' });
    assert.match(shell.stderr, /^podbridge: Docker container "distroless" has no \/bin\/sh, so there is no shell to open; run a command instead/);
    assert.equal(shell.code, 255);
  });

  it('leaves nothing running in the container after the client disconnects', async () => {
    const child = spawn('ssh', [...sshArgs(w.bridge.port, w.bridge.key), 'web@127.0.0.1', 'sleep 4242 & (sleep 4343 &) ; echo started; sleep 4444'], { stdio: 'pipe' });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await waitUntil('the command started', async () => out.includes('started'), 30_000);
    assert.equal((await psGrep('web', 'sleep 4')).length >= 3, true, 'the three sleeps run');
    child.kill('SIGKILL');
    await waitUntil('no sleep of the session is left in the container (docker exec ps)', async () => (await psGrep('web', 'sleep 4')).length === 0, 30_000);
    const top = await w.dockerd.docker(['top', 'web']);
    assert.doesNotMatch(top, /sleep 4[234]4[234]/);
  });

  it('ends the session with one line when its container is killed, and when it is removed', async () => {
    await w.dockerd.docker(['run', '-d', '--network', 'none', '--name', 'victim', TEST_IMAGE, 'sleep', '1000000']);
    const killed = ssh('victim', 'echo up; sleep 600');
    await waitUntil('the session runs', async () => (await psGrep('victim', 'sleep 600')).length > 0, 30_000);
    await w.dockerd.docker(['kill', 'victim']);
    const k = await killed;
    assert.equal(k.stdout.toString(), 'up\n');
    assert.match(k.stderr, /^podbridge: Docker container "victim" stopped \(exit code 137\); the session ended with it\n$/);
    assert.equal(k.code, 255);

    await w.dockerd.docker(['run', '-d', '--network', 'none', '--name', 'victim2', TEST_IMAGE, 'sleep', '1000000']);
    const removed = ssh('victim2', 'sleep 600');
    await waitUntil('the session runs', async () => (await psGrep('victim2', 'sleep 600')).length > 0, 30_000);
    await w.dockerd.docker(['rm', '-f', 'victim2']);
    const r = await removed;
    assert.match(r.stderr, /^podbridge: Docker container "victim2" (was removed; the session ended with it|stopped \(exit code 137\); the session ended with it)\n$/);
    assert.equal(r.code, 255);
  });

  it('reaches a TCP Engine over TLS with client certificates: stdin EOF through the half-closed TLS stream, a TTY, exit codes', async () => {
    const tcp = w.dockerd.tcp!;
    const b = await startTestBridge({ backend: 'docker', dockerHost: tcp.host, dockerTlsCa: tcp.ca, dockerTlsCert: tcp.cert, dockerTlsKey: tcp.key, key: w.bridge.key });
    try {
      const data = crypto.randomBytes(2 * 1024 * 1024);
      const r = await runSsh({ port: b.port, key: b.key, login: 'web', command: 'sha256sum | cut -d" " -f1; exit 5', stdin: data });
      assert.equal(r.stdout.toString().trim(), crypto.createHash('sha256').update(data).digest('hex'), r.stderr);
      assert.equal(r.code, 5);
      const s = new InteractiveSsh({ port: b.port, key: b.key, login: 'shop.web+2', cols: 101, rows: 33 });
      try {
        s.write('echo "S=$(stty size) T=$TERM"; exit 9\r');
        const m = await s.waitFor(/S=(\d+ \d+) T=(\S+)/);
        assert.equal(m[1], '33 101');
        assert.equal(m[2], 'xterm-256color');
        assert.equal(await s.waitExit(), 9);
      } finally {
        s.kill();
      }
    } finally {
      await b.close();
    }
  });

  it('an idle session is ended by the bridge and leaves nothing in the container', async () => {
    const b = await startTestBridge({ backend: 'docker', dockerHost: w.dockerd.host, idleTimeout: 2, sessionWarning: 0, key: w.bridge.key });
    try {
      const r = await runSsh({ port: b.port, key: b.key, login: 'web', command: 'sleep 4646 & sleep 4747' });
      assert.match(r.stderr, /^podbridge: session ended: idle for 2 s\n$/);
      assert.equal(r.code, 255);
      await waitUntil('nothing of the idle session is left', async () => (await psGrep('web', 'sleep 4')).length === 0, 30_000);
    } finally {
      await b.close();
    }
  });

  it('one bridge serves Kubernetes and Docker: unprefixed names go to Kubernetes, docker~ to Docker', async () => {
    const cluster = await startTestCluster();
    let b: TestBridge | null = null;
    try {
      b = await startTestBridge({ backend: 'kubernetes+docker', kubeconfig: cluster.kubeconfig, dockerHost: w.dockerd.host, key: w.bridge.key });
      const kube = await runSsh({ port: b.port, key: b.key, login: 'team-a.web-1', command: 'echo from-kubernetes' });
      assert.equal(kube.stdout.toString(), 'from-kubernetes\n', kube.stderr);
      const dock = await runSsh({ port: b.port, key: b.key, login: 'docker~web', command: 'hostname' });
      assert.equal(dock.stdout.toString().trim(), await hostnameOf('web'), dock.stderr);
      const k8s = await runSsh({ port: b.port, key: b.key, login: 'k8s~team-a.web-1', command: 'echo explicit' });
      assert.equal(k8s.stdout.toString(), 'explicit\n', k8s.stderr);
    } finally {
      await b?.close();
      await cluster.stop();
    }
  });

  it('signals reach the command (ssh2 client: OpenSSH sends none); KILL is reported as exit-signal KILL', async () => {
    const exit = await new Promise<{ code: unknown; signal: unknown }>((resolve, reject) => {
      const c = new ssh2.Client();
      c.on('error', reject);
      c.on('ready', () => {
        const traps = ['INT', 'HUP', 'USR1'].map((sig) => `trap 'echo got-${sig}' ${sig};`).join(' ');
        c.exec(`${traps} echo ready; while :; do sleep 0.1; done`, (err, stream) => {
          if (err) return reject(err);
          let out = '';
          let result: { code: unknown; signal: unknown } = { code: undefined, signal: undefined };
          stream.on('data', (d: Buffer) => (out += d.toString()));
          stream.stderr.on('data', (d: Buffer) => (out += d.toString()));
          stream.on('exit', (code: unknown, signal: unknown) => (result = { code, signal }));
          stream.on('close', () => {
            c.end();
            resolve(result);
          });
          void (async () => {
            await waitUntil(`ready: ${out}`, async () => out.includes('ready'), 30_000);
            for (const sig of ['INT', 'HUP', 'USR1']) {
              stream.signal(sig);
              await waitUntil(`got-${sig}: ${out}`, async () => out.includes(`got-${sig}`), 30_000);
            }
            stream.signal('KILL');
          })().catch(reject);
        });
      });
      c.connect({ host: '127.0.0.1', port: w.bridge.port, username: 'shop.web+1', privateKey: fs.readFileSync(w.bridge.key.keyFile) });
    });
    assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
  });

  it('the bridge shuts down: its sessions are ended and nothing is left in the container', async () => {
    const doomed = await startTestBridge({ backend: 'docker', dockerHost: w.dockerd.host, key: w.bridge.key });
    const child = spawn('ssh', [...sshArgs(doomed.port, doomed.key), 'shop.web+2@127.0.0.1', 'sleep 4848 & echo ready; wait'], { stdio: 'pipe' });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await waitUntil('the session started', async () => out.includes('ready'), 30_000);
    } finally {
      await doomed.close();
    }
    await waitUntil('nothing of the session is left', async () => (await psGrep('shop-web-2', 'sleep 4848')).length === 0, 30_000);
    child.kill('SIGKILL');
  });

  it('the Engine going away ends the session cleanly; logins say so; it works again once dockerd is back', async () => {
    const running = ssh('web', 'echo up; sleep 600', 120_000);
    await waitUntil('the session runs', async () => (await psGrep('web', 'sleep 600')).length > 0, 30_000);
    await w.dockerd.kill();
    const r = await running;
    assert.equal(r.stdout.toString(), 'up\n');
    assert.match(r.stderr, /^podbridge: (connection to the Docker Engine lost before Docker container "web" reported an exit status[^\n]*|Docker container "web" stopped[^\n]*)\n$/);
    assert.equal(r.code, 255);
    const refused = await ssh('web', 'true');
    assert.match(refused.stderr, /^podbridge: cannot reach the Docker Engine[^\n]*\n$/);
    assert.equal(refused.code, 255);
    await w.dockerd.restart();
    await w.dockerd.docker(['start', 'web']).catch(() => '');
    const again = await ssh('web', 'echo back');
    assert.equal(again.stdout.toString(), 'back\n', again.stderr);
  });
});

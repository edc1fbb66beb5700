/**
 * The production image, built from the repository's Dockerfile with `docker build` and run as an
 * operator would run it, on a real dockerd (test/helpers/dockerd.ts, with overlay2 storage: vfs
 * copies the whole root for each of the Dockerfile's instructions; no registry).
 *
 * Not part of `npm test` (the build alone takes minutes on two cores): `.ci/run` runs it as a
 * step of its own, `node build/test/runner.js --budget 2400,1800 $PWD/build/test/image/image.test.js`.
 *
 * Offline on purpose, as CI is: the Dockerfile's bases (official node:*-bookworm-slim images)
 * cannot be pulled, so test/setup/image-base.sh makes stand-ins (Debian 12 minbase + this
 * machine's node; the build one also has the toolchain, npm and Node's headers) and they are
 * passed as NODE_IMAGE/BUILD_IMAGE. The build has no network either (`--network none`): npm ci
 * in it installs from an npm cache that this test fills from the lockfile on the host
 * (npm-offline-cache.tar in the build context, which the Dockerfile looks for).
 *
 * The containers use the host's network (the test dockerd has no bridge), each on free ports.
 * Figures (build time, image size, stop time) are printed, not asserted.
 */
// test-budget: file 2400 s, test 1800 s
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestDockerd, type TestDockerd } from '../helpers/dockerd.ts';
import { freePort } from '../helpers/haproxy.ts';
import { CODE, REPO } from '../helpers/paths.ts';
import { InteractiveSsh, makeClientKey, runSsh, type ClientKey } from '../helpers/ssh-client.ts';

const ROOTS = { runtime: '/var/cache/podbridge/bookworm-node-root', build: '/var/cache/podbridge/bookworm-node-build-root' };
const NODE_IMAGE = 'podbridge-standin/node:bookworm-slim';
const BUILD_IMAGE = 'podbridge-standin/node-build:bookworm';
const IMAGE = 'podbridge:ci';
/** The uid and gid of the image's `node` user (as in the official images). */
const NODE_UID = 1000;

let dockerd: TestDockerd;
let work: string;
let key: ClientKey;
const figures: Record<string, string> = {};

/** Runs a command with the test dockerd as DOCKER_HOST; resolves with stdout, rejects with stderr. */
function sh(file: string, args: string[], opts: { timeoutMs?: number; input?: string; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = execFile(
      file,
      args,
      { cwd: opts.cwd, maxBuffer: 256 * 1024 * 1024, timeout: opts.timeoutMs ?? 120_000, env: { ...process.env, DOCKER_HOST: dockerd?.host ?? '', DOCKER_CONFIG: path.join(work, 'docker-cli') } },
      (err, stdout, stderr) => (err ? reject(new Error(`${file} ${args.join(' ')}: ${String(stderr).trim().split('\n').slice(-25).join('\n') || err.message}`)) : resolve(String(stdout))),
    );
    p.stdin?.end(opts.input ?? '');
  });
}
const docker = (args: string[], timeoutMs?: number): Promise<string> => sh('docker', args, { timeoutMs });

async function until<T>(check: () => Promise<T | null | false>, what: string, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const got = await check().catch(() => null);
    if (got !== null && got !== false) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function httpGet(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/**
 * A directory laid out as the kubelet mounts a Secret: the files in a timestamped directory,
 * `..data` pointing at it, and each key a symlink through `..data`; files of `mode`, owned by
 * root and group `gid` (the pod's fsGroup).
 */
function secretMount(name: string, files: Record<string, string>, mode: number, gid: number): string {
  const dir = path.join(work, name);
  const stamp = '..2026_12_07_18_00_00.000000001';
  fs.mkdirSync(path.join(dir, stamp), { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    const f = path.join(dir, stamp, file);
    fs.writeFileSync(f, content);
    fs.chownSync(f, 0, gid);
    fs.chmodSync(f, mode);
    fs.symlinkSync(path.join('..data', file), path.join(dir, file));
  }
  fs.symlinkSync(stamp, path.join(dir, '..data'));
  fs.chmodSync(dir, 0o755);
  return dir;
}

interface Running {
  id: string;
  port: number;
  diag: number;
}

/** The image with its default command, configured only by PODBRIDGE_* variables and mounts. */
async function runBridge(hostKeys: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Running> {
  const port = await freePort();
  const diag = await freePort();
  const vars = {
    PODBRIDGE_LISTEN: `127.0.0.1:${port}`,
    PODBRIDGE_DIAG_LISTEN: `127.0.0.1:${diag}`,
    PODBRIDGE_BACKEND: 'local',
    PODBRIDGE_HOST_KEY: '/run/secrets/host-keys',
    PODBRIDGE_AUTHORIZED_KEYS: '/etc/podbridge/authorized_keys',
    ...env,
  };
  const id = (
    await docker([
      'run', '-d', '--network', 'host', '--read-only', '--tmpfs', '/tmp',
      // The image's own HEALTHCHECK command, checked more often than its 30 s so the test is short.
      '--health-interval', '1s', '--health-start-period', '30s',
      '-v', `${hostKeys}:/run/secrets/host-keys:ro`,
      '-v', `${path.join(work, 'etc')}:/etc/podbridge:ro`,
      ...Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      ...extra,
      IMAGE,
    ])
  ).trim();
  return { id, port, diag };
}

/** Resolves when the SSH port answers with a version line, or rejects with the container's log. */
async function sshUp(c: Running): Promise<void> {
  await until(async () => {
    const state = (await docker(['inspect', '-f', '{{.State.Status}}', c.id])).trim();
    if (state === 'exited') throw new Error(`container exited: ${await docker(['logs', c.id]).catch(() => '')}`);
    return (await httpGet(c.diag, '/readyz')).status === 200;
  }, 'the bridge to be ready', 90_000).catch(async (err: Error) => {
    throw new Error(`${err.message}; log: ${(await sh('sh', ['-c', `docker logs ${c.id} 2>&1 | tail -20`]).catch(() => ''))}`);
  });
}

/** Processes in the container: pid, ppid, state, command line (from /proc, via docker exec). */
async function processes(id: string): Promise<Array<{ pid: number; ppid: number; state: string; uid: number; cmd: string }>> {
  const out = await docker(['exec', id, 'sh', '-c', 'for d in /proc/[0-9]*; do s=$(cat $d/status 2>/dev/null) || continue; printf "%s|%s|%s|%s|%s\\n" "${d#/proc/}" "$(echo "$s" | sed -n "s/^PPid:\\t//p")" "$(echo "$s" | sed -n "s/^State:\\t\\(.\\).*/\\1/p")" "$(echo "$s" | sed -n "s/^Uid:\\t\\([0-9]*\\).*/\\1/p")" "$(tr "\\0" " " < $d/cmdline 2>/dev/null)"; done']);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [pid, ppid, state, uid, cmd] = l.split('|');
      return { pid: Number(pid), ppid: Number(ppid), state: state ?? '', uid: Number(uid), cmd: (cmd ?? '').trim() };
    });
}

before(async () => {
  for (const root of Object.values(ROOTS)) {
    if (!fs.existsSync(path.join(root, '.podbridge-complete'))) throw new Error(`${root} is missing: run \`bash test/setup/image-base.sh\` (as .ci/run does) to build the stand-in base images`);
  }
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-image-'));
  fs.chmodSync(work, 0o755);
  dockerd = await startTestDockerd({ storageDriver: 'overlay2' });
  for (const [root, tag] of [[ROOTS.runtime, NODE_IMAGE], [ROOTS.build, BUILD_IMAGE]] as const) {
    await sh('sh', ['-c', `tar -C "$0" --exclude=./.podbridge-complete -cf - . | docker import - "$1"`, root, tag], { timeoutMs: 600_000 });
  }

  // The build context: the repository as `docker build .` would send it (.dockerignore applied
  // to top-level names and paths), plus the offline npm cache.
  const context = path.join(work, 'context');
  const ignored = fs.readFileSync(path.join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  fs.cpSync(REPO, context, { recursive: true, filter: (src) => !ignored.includes(path.relative(REPO, src)) });
  const scratch = path.join(work, 'npm');
  fs.mkdirSync(scratch);
  for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(REPO, f), path.join(scratch, f));
  // Every package of the lockfile into a fresh cache (from the registry, on the host); scripts
  // are not run here, the build runs them.
  await sh('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--cache', path.join(work, 'npm-cache')], { timeoutMs: 900_000, cwd: scratch });
  fs.rmSync(scratch, { recursive: true, force: true });
  await sh('tar', ['-C', path.join(work, 'npm-cache'), '-cf', path.join(context, 'npm-offline-cache.tar'), '.'], { timeoutMs: 300_000 });

  const started = Date.now();
  await docker(
    ['build', '--network', 'none', '--build-arg', `NODE_IMAGE=${NODE_IMAGE}`, '--build-arg', `BUILD_IMAGE=${BUILD_IMAGE}`, '-t', IMAGE, context],
    1_500_000,
  );
  figures.buildSeconds = ((Date.now() - started) / 1000).toFixed(0);

  key = makeClientKey('operator@laptop');
  fs.mkdirSync(path.join(work, 'etc'), { mode: 0o755 });
  fs.writeFileSync(path.join(work, 'etc', 'authorized_keys'), `${key.publicLine}\n`, { mode: 0o644 });
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'podbridge-ci-host', '-f', path.join(work, 'host_key')]);
});

after(async () => {
  // The runner shows a passing file's output only on failure: the figures also go to a file
  // that .ci/run prints (build/image-figures.json).
  console.log(`image figures: ${JSON.stringify(figures)}`);
  fs.writeFileSync(path.join(CODE, 'image-figures.json'), `${JSON.stringify(figures, null, 2)}\n`);
  await dockerd?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('the production image', () => {
  let main: Running;

  it('is built offline from the Dockerfile on the Node of its base, with tini as PID 1, a health check and a non-root user', async () => {
    const config = JSON.parse(await docker(['image', 'inspect', '-f', '{{json .Config}}', IMAGE])) as Record<string, unknown>;
    assert.equal(config.User, 'node');
    assert.deepEqual((config.Entrypoint as string[]).slice(0, 2), ['/usr/bin/tini', '--']);
    assert.deepEqual(config.Cmd, ['serve']);
    assert.equal(config.StopSignal, 'SIGTERM');
    assert.ok((config.Healthcheck as { Test: string[] }).Test.join(' ').includes('/healthz'));
    const version = (await docker(['run', '--rm', '--network', 'none', '--entrypoint', 'node', IMAGE, '-p', 'process.versions.node'])).trim();
    assert.equal(version.split('.')[0], process.versions.node.split('.')[0], 'the stand-in base carries this machine\'s Node major');
    const size = Number((await docker(['image', 'inspect', '-f', '{{.Size}}', IMAGE])).trim());
    figures.imageMB = (size / 1e6).toFixed(0);
    const base = Number((await docker(['image', 'inspect', '-f', '{{.Size}}', NODE_IMAGE])).trim());
    figures.baseMB = (base / 1e6).toFixed(0);
    figures.node = version;
  });

  it('holds no private key and no native binary for another platform (listed)', async () => {
    const root = path.join(work, 'exported');
    fs.mkdirSync(root);
    const id = (await docker(['create', IMAGE])).trim();
    await sh('sh', ['-c', 'docker export "$0" | tar -x -C "$1"', id, root], { timeoutMs: 600_000 });
    await docker(['rm', id]);
    const keys: string[] = [];
    const natives: string[] = [];
    const foreign: string[] = [];
    const baseBinaries: string[] = [];
    // Spelled in parts so that this file is not itself flagged by secret scanners as holding a key.
    const MARKER = ['PRIVATE', 'KEY-----'].join(' ');
    const pem = new RegExp(`-----BEGIN ([A-Z0-9]+ )*${MARKER}\\r?\\n(?:[A-Za-z0-9+/=:,\\- ]*\\r?\\n)*[A-Za-z0-9+/=]{40,}`);
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const f = path.join(dir, e.name);
        const shown = `/${path.relative(root, f)}`;
        if (e.isDirectory()) {
          if (e.name === 'prebuilds') for (const p of fs.readdirSync(f)) if (p !== `${process.platform}-${process.arch}`) foreign.push(`${shown}/${p}`);
          walk(f);
          continue;
        }
        if (!e.isFile()) continue;
        const st = fs.statSync(f);
        if (/^id_(rsa|dsa|ecdsa|ed25519)/.test(e.name) || /^ssh_host_.*_key$/.test(e.name)) keys.push(shown);
        if (st.size < 8 * 1024 * 1024) {
          const text = fs.readFileSync(f, 'latin1');
          if (text.includes(MARKER) && pem.test(text)) {
            // Everything of ours (/app) counts, binary or not. In the base's own shared
            // libraries a key is a built-in self-test vector (GnuTLS's FIPS tests), not a
            // secret, and no file a scanner reads as text: listed, not failed.
            if (shown.startsWith('/app/') || !text.includes('\0')) keys.push(shown);
            else baseBinaries.push(shown);
          }
        }
        if (e.name.endsWith('.node')) {
          const head = Buffer.alloc(20);
          const fd = fs.openSync(f, 'r');
          fs.readSync(fd, head, 0, 20, 0);
          fs.closeSync(fd);
          const elf = head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
          const machine = head.readUInt16LE(18);
          natives.push(`${shown} (${elf ? `ELF machine ${machine}` : 'not ELF'}, ${st.size} bytes)`);
          // 62: x86-64, 183: aarch64: the machine this test runs on.
          const here = process.arch === 'x64' ? 62 : process.arch === 'arm64' ? 183 : -1;
          if (!elf || machine !== here) foreign.push(shown);
        }
      }
    };
    walk(path.join(root, 'app'));
    const appKeys = [...keys];
    walk(path.join(root, 'usr'));
    walk(path.join(root, 'etc'));
    console.log(`native modules in the image:\n  ${natives.join('\n  ')}`);
    console.log(`binaries of the base image holding a PEM private key block: ${baseBinaries.join(', ') || 'none'}`);
    figures.nativeModules = natives.join('; ');
    figures.baseBinariesWithKeyBlocks = baseBinaries.join('; ') || 'none';
    assert.deepEqual(keys, [], `private keys in the image: ${keys.join(', ')}`);
    assert.deepEqual(appKeys, []);
    assert.deepEqual(foreign, [], `binaries for other platforms: ${foreign.join(', ')}`);
    assert.ok(natives.some((n) => n.includes('node-pty/build/Release/pty.node')), `node-pty's own binary is there: ${natives.join(', ')}`);
    assert.equal(fs.existsSync(path.join(root, 'app/node_modules/ssh2/test')), false);
    // The scan finds a key when there is one (so the empty list above means something).
    const planted = fs.readFileSync(path.join(work, 'host_key'), 'utf8');
    assert.ok(pem.test(planted));
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('runs non-root on a read-only root filesystem, configured by PODBRIDGE_* alone: SSH into a session in the container', async () => {
    // The layout fsGroup gives a Secret with defaultMode 0440: root-owned, group 1000.
    const keys = secretMount('keys-fsgroup', { ssh_host_ed25519_key: fs.readFileSync(path.join(work, 'host_key'), 'utf8') }, 0o440, NODE_UID);
    main = await runBridge(keys);
    await sshUp(main);
    const scanned = execFileSync('ssh-keyscan', ['-t', 'ed25519', '-p', String(main.port), '127.0.0.1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split(' ').slice(1, 3).join(' ');
    assert.equal(scanned, fs.readFileSync(path.join(work, 'host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' '), 'the host key named by PODBRIDGE_HOST_KEY');
    const r = await runSsh({ port: main.port, key, login: 'x', command: 'echo in-container; id -u; cat /proc/1/comm; touch /app/probe 2>&1 || echo write-refused' });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().split('\n');
    assert.deepEqual([lines[0], lines[1], lines[2]], ['in-container', String(NODE_UID), 'tini']);
    assert.match(r.stdout.toString(), /Read-only file system\nwrite-refused\n$/);
    const procs = await processes(main.id);
    const bridge = procs.find((p) => p.cmd.startsWith('node /app/dist/cli.js serve'));
    assert.ok(bridge, JSON.stringify(procs));
    assert.equal(bridge.ppid, 1);
    assert.equal(bridge.uid, NODE_UID);
  });

  it('turns healthy through its HEALTHCHECK', async () => {
    const status = await until(async () => {
      const s = (await docker(['inspect', '-f', '{{.State.Health.Status}}', main.id])).trim();
      return s === 'healthy' ? s : null;
    }, 'the health check to pass', 60_000);
    assert.equal(status, 'healthy');
  });

  it('PID 1 (tini) reaps an orphaned process', async () => {
    // The shell exits at once; its background sleep is orphaned and re-parented to PID 1, and
    // when it ends only PID 1 can reap it (node as PID 1 would leave a zombie).
    // (sleep's output goes elsewhere, so `docker exec` returns when the shell exits.)
    const pid = Number((await docker(['exec', main.id, 'sh', '-c', 'sleep 4 </dev/null >/dev/null 2>&1 & echo $!'])).trim());
    assert.ok(pid > 1);
    const orphan = (await processes(main.id)).find((p) => p.pid === pid);
    assert.ok(orphan !== undefined && orphan.cmd === 'sleep 4', `the orphan is running: ${JSON.stringify(orphan)}`);
    assert.equal(orphan.ppid, 1, 'the orphan belongs to PID 1');
    await until(async () => !(await processes(main.id)).some((p) => p.pid === pid), `process ${pid} to be reaped (still there: ${JSON.stringify((await processes(main.id)).find((p) => p.pid === pid))})`, 30_000);
  });

  it('docker stop ends it within the grace: the session is told, its command ended, the bridge exits 0 before any SIGKILL', async () => {
    const s = new InteractiveSsh({ port: main.port, key, login: 'x', command: 'echo started; exec sleep 300' });
    try {
      await s.waitFor(/started/, 30_000);
      await until(async () => (await processes(main.id)).some((p) => p.cmd === 'sleep 300'), 'the sleep in the container');
      const t0 = Date.now();
      await docker(['stop', main.id], 60_000);
      figures.stopSeconds = ((Date.now() - t0) / 1000).toFixed(1);
      const state = JSON.parse(await docker(['inspect', '-f', '{{json .State}}', main.id])) as { ExitCode: number; OOMKilled: boolean };
      assert.equal(state.ExitCode, 0, 'exit 0: the bridge drained and exited by itself (137 would be docker\'s SIGKILL after 10 s)');
      const code = await s.waitExit(30_000);
      assert.equal(code, 255);
      assert.match(s.output, /podbridge is shutting down/);
      assert.match(s.output, /session ended: podbridge shut down/);
      const log = await sh('sh', ['-c', `docker logs "$0" 2>&1`, main.id]);
      assert.match(log, /"msg":"shutting down"/);
      assert.doesNotMatch(log, /did not finish within its bound/);
    } finally {
      s.kill();
    }
  });

  it('a Secret mounted 0440 for a supplementary group (fsGroup) is usable; 0400 root-owned and 0644 are refused with the reason', async () => {
    const text = fs.readFileSync(path.join(work, 'host_key'), 'utf8');
    const supplementary = await runBridge(secretMount('keys-group', { ssh_host_ed25519_key: text }, 0o440, 2000), ['--group-add', '2000']);
    try {
      await sshUp(supplementary);
      const r = await runSsh({ port: supplementary.port, key, login: 'x', command: 'id -G' });
      assert.match(r.stdout.toString(), /\b2000\b/, r.stderr);
    } finally {
      await docker(['rm', '-f', supplementary.id]);
    }
    for (const [name, mode, why] of [
      ['keys-0400', 0o400, /host key \/run\/secrets\/host-keys\/ssh_host_ed25519_key cannot be read by this process \(uid 1000; mode 0400, owner 0, group 0\); in Kubernetes mount the Secret with defaultMode: 0440/],
      ['keys-0644', 0o644, /host key \/run\/secrets\/host-keys\/ssh_host_ed25519_key is readable by other users \(mode 0644, owner 0, group 0\)/],
    ] as const) {
      const c = await runBridge(secretMount(name, { ssh_host_ed25519_key: text }, mode, 0));
      try {
        const state = await until(async () => {
          const s = JSON.parse(await docker(['inspect', '-f', '{{json .State}}', c.id])) as { Status: string; ExitCode: number };
          return s.Status === 'exited' ? s : null;
        }, `the ${name} container to exit`);
        assert.notEqual(state.ExitCode, 0);
        const log = await sh('sh', ['-c', `docker logs "$0" 2>&1`, c.id]);
        assert.match(log, why, log);
        console.log(`${name}: ${log.trim().split('\n').slice(-1)[0]}`);
      } finally {
        await docker(['rm', '-f', c.id]);
      }
    }
  });
});

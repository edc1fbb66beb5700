/**
 * A real Docker Engine for tests: Debian's dockerd with its own data root, exec root and socket
 * under a temp directory (vfs storage, no iptables, no bridge), started here and stopped here.
 * Images are made offline with `docker import` of root filesystems built from this machine's
 * files, since no registry is reachable:
 *   - pb-test: busybox-static (every applet as a symlink), bash, sftp-server and scp copied from the
 *     host with the libraries `ldd` names;
 *   - pb-noshell: a static busybox at /usr/bin/busybox and nothing else (no /bin/sh).
 * When dockerd cannot start, start() throws with the reason and dockerd's last log lines: the
 * tests fail and say why; nothing is skipped.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './ports.ts';
import { alive } from './processes.ts';

export interface TestDockerd {
  /** unix:///.../docker.sock */
  host: string;
  /** With `tls: true`: the same daemon on tcp://127.0.0.1:PORT, client certificates required. */
  tcp: { host: string; ca: string; cert: string; key: string } | null;
  socketPath: string;
  dir: string;
  /** Runs the docker CLI against this daemon; resolves with stdout, rejects with stderr. */
  docker(args: string[], input?: Buffer | string): Promise<string>;
  /** Stops the daemon (containers with it) and removes its files. */
  stop(): Promise<void>;
  /** Kills dockerd without letting it stop its containers (the Engine "going away"). */
  kill(): Promise<void>;
  /** Starts dockerd again on the same data root and socket (after kill()). */
  restart(): Promise<void>;
}

const BUSYBOX = '/bin/busybox';
const BASH = '/bin/bash';
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';
/** Legacy `scp -O` runs `scp -t` in the container. */
const SCP = '/usr/bin/scp';

/**
 * `storageDriver`: vfs (default) copies a whole root filesystem for every container, which is
 * fine for the small test images; overlay2 is for building a real image (test/image), where
 * vfs copies hundreds of MB for each Dockerfile instruction.
 */
export async function startTestDockerd(options: { tls?: boolean; storageDriver?: 'vfs' | 'overlay2' } = {}): Promise<TestDockerd> {
  for (const [file, pkg] of [['dockerd', 'docker.io'], ['docker', 'docker.io']] as const) {
    if (!onPath(file)) throw new Error(`${file} not found on PATH: install Debian's ${pkg} (apt-get install ${pkg}); the Docker tests need a real Engine`);
  }
  if (process.getuid?.() !== 0) throw new Error('dockerd needs root: run the Docker tests as root (CI does)');
  // Short: a unix socket path must fit in 108 bytes.
  const dir = fs.mkdtempSync(path.join('/tmp', 'pbd-'));
  const socketPath = path.join(dir, 'docker.sock');
  const host = `unix://${socketPath}`;
  const logFile = path.join(dir, 'dockerd.log');
  let child: ChildProcess | null = null;
  let tcp: TestDockerd['tcp'] = null;
  let tlsArgs: string[] = [];
  if (options.tls === true) {
    const made = await makeTlsFiles(dir);
    tcp = made.client;
    tlsArgs = made.daemonArgs;
  }

  const launch = async (): Promise<void> => {
    const log = fs.openSync(logFile, 'a');
    child = spawn(
      'dockerd',
      [
        `--storage-driver=${options.storageDriver ?? 'vfs'}`,
        '--iptables=false',
        '--ip-masq=false',
        '--bridge=none',
        '--userland-proxy=false',
        '--shutdown-timeout=2',
        `--data-root=${path.join(dir, 'data')}`,
        `--exec-root=${path.join(dir, 'exec')}`,
        `--pidfile=${path.join(dir, 'docker.pid')}`,
        `--host=${host}`,
        ...tlsArgs,
        '--log-level=warn',
      ],
      { stdio: ['ignore', log, log], detached: false },
    );
    fs.closeSync(log);
    const exited = new Promise<string>((resolve) => child!.once('exit', (code, signal) => resolve(`dockerd exited (${signal ?? `code ${code}`})`)));
    const deadline = Date.now() + 90_000;
    for (;;) {
      const why = await Promise.race([exited, delay(200, null)]);
      if (why !== null) throw new Error(`${why} before its API answered: ${tail(logFile)}`);
      if (await pingOk(socketPath)) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`dockerd did not answer on ${host} within 90 s: ${tail(logFile)}`);
      }
    }
  };

  const stopChild = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill(signal);
    // An unreferenced timer: a pending 30 s one kept every Docker test file alive for 30 s after its
    // last test (node:test waits for an empty event loop before the process exits).
    if ((await Promise.race([gone.then(() => 'gone'), delay(30_000, 'timeout', { ref: false })])) === 'timeout') {
      c.kill('SIGKILL');
      await gone;
    }
  };

  const docker = (args: string[], input?: Buffer | string): Promise<string> =>
    new Promise((resolve, reject) => {
      const p = execFile('docker', ['-H', host, ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 120_000, env: { ...process.env, DOCKER_CONFIG: path.join(dir, 'cli') } }, (err, stdout, stderr) => {
        if (err) reject(new Error(`docker ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
        else resolve(stdout);
      });
      p.stdin?.end(input ?? '');
    });

  try {
    await launch();
    await buildImages(dir, docker);
  } catch (err) {
    await stopChild('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    host,
    tcp,
    socketPath,
    dir,
    docker,
    async stop() {
      const ids = (await docker(['ps', '-aq']).catch(() => '')).split('\n').filter(Boolean);
      if (ids.length > 0) await docker(['rm', '-f', ...ids]).catch(() => '');
      await stopChild('SIGTERM');
      // A dockerd that was killed can leave containers' shm mounts behind under the data root.
      for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n').reverse()) {
        const mountPoint = line.split(' ')[1];
        if (mountPoint?.startsWith(`${dir}/`)) await run('umount', ['-l', mountPoint]).catch(() => '');
      }
      fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    },
    async kill() {
      await stopChild('SIGKILL');
      // dockerd's own containerd outlives it and would keep the next dockerd from starting its own.
      const pidFile = path.join(dir, 'exec', 'containerd', 'containerd.pid');
      const pid = Number(fs.existsSync(pidFile) ? fs.readFileSync(pidFile, 'utf8').trim() : NaN);
      if (Number.isInteger(pid) && pid > 1) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        for (let i = 0; i < 100 && alive(pid); i++) await delay(50);
      }
    },
    async restart() {
      await launch();
    },
  };
}

/** Builds a root filesystem from host files and imports it. */
async function buildImages(dir: string, docker: TestDockerd['docker']): Promise<void> {
  for (const file of [BUSYBOX, BASH, SFTP_SERVER, SCP]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: install busybox-static, bash and openssh-sftp-server to build the test images`);
  }
  const root = path.join(dir, 'root-test');
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin', 'busybox'));
  fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
  const applets = await run(BUSYBOX, ['--list']);
  for (const applet of applets.split('\n').filter(Boolean)) {
    const link = path.join(root, 'bin', applet);
    if (!fs.existsSync(link)) fs.symlinkSync('busybox', link);
  }
  // bash replaces busybox's: the TTY tests want a real login shell.
  fs.rmSync(path.join(root, 'bin', 'bash'), { force: true });
  await copyWithLibraries(root, BASH);
  await copyWithLibraries(root, SFTP_SERVER);
  await copyWithLibraries(root, SCP);
  for (const d of ['etc', 'tmp', 'root', 'proc', 'sys', 'dev', 'usr/bin']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  // Imported while the second root is built, and side by side with it.
  const imported = importRoot(root, 'pb-test:latest', docker);

  const bare = path.join(dir, 'root-noshell');
  fs.mkdirSync(path.join(bare, 'usr', 'bin'), { recursive: true });
  fs.copyFileSync(BUSYBOX, path.join(bare, 'usr', 'bin', 'busybox'));
  fs.chmodSync(path.join(bare, 'usr', 'bin', 'busybox'), 0o755);
  for (const d of ['tmp', 'proc', 'sys', 'dev', 'etc']) fs.mkdirSync(path.join(bare, d), { recursive: true });
  await Promise.all([imported, importRoot(bare, 'pb-noshell:latest', docker)]);
}

async function importRoot(root: string, tag: string, docker: TestDockerd['docker']): Promise<void> {
  const tarball = `${root}.tar`;
  await run('tar', ['-C', root, '-cf', tarball, '.']);
  await docker(['import', tarball, tag]);
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(tarball, { force: true });
}

/** Copies a dynamically linked binary and every library `ldd` names, at the same paths. */
async function copyWithLibraries(root: string, binary: string): Promise<void> {
  const files = new Set<string>([binary]);
  for (const line of (await run('ldd', [binary])).split('\n')) {
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1] !== undefined) files.add(m[1]);
  }
  for (const file of files) {
    const dest = path.join(root, file);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(fs.realpathSync(file), dest);
    fs.chmodSync(dest, 0o755);
  }
  // Debian's merged /usr: /lib64 and /lib are links in the image too, or the loader is not found.
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => (err ? reject(new Error(`${file} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

function pingOk(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl. */
async function makeTlsFiles(dir: string): Promise<{ client: NonNullable<TestDockerd['tcp']>; daemonArgs: string[] }> {
  const tls = path.join(dir, 'tls');
  fs.mkdirSync(tls);
  const f = (name: string) => path.join(tls, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=podbridge-test-ca']);
  for (const [who, ext] of [['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    fs.writeFileSync(f(`${who}.ext`), `${ext}\n`);
    await run('openssl', ['req', ...ec, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=${who}`]);
    await run('openssl', ['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.pem`), '-days', '2', '-extfile', f(`${who}.ext`)]);
  }
  const port = await freePort();
  return {
    client: { host: `tcp://127.0.0.1:${port}`, ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') },
    daemonArgs: [`--host=tcp://127.0.0.1:${port}`, '--tlsverify', `--tlscacert=${f('ca.pem')}`, `--tlscert=${f('server.pem')}`, `--tlskey=${f('server.key')}`],
  };
}

function onPath(file: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, file), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function tail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-8).join(' | ');
  } catch {
    return '(no log)';
  }
}

export const TEST_IMAGE = 'pb-test:latest';
export const NOSHELL_IMAGE = 'pb-noshell:latest';

/**
 * CPU seconds per GiB of ssh2 alone, A/B: `npx tsc -p tsconfig.test.json && node build/bench/tools/ssh2-cpu-per-gib.js
 * [--mib N] [--rounds N] [--cipher NAME] [--upload] [--per-tick] DIR_A DIR_B ...` where each DIR holds an ssh2
 * package (e.g. node_modules/ssh2 and a copy made by bench/tools/ssh2-candidate.sh).
 * `--per-tick`: the server hands ssh2 one 32 KiB chunk per write callback (one per tick), as a
 * piped Readable and the bridge's ChannelOutput do, instead of writing in a loop.
 *
 * Each round starts one child per ssh2 copy in turn (alternating, so machine load hits both
 * alike): a bare ssh2 server whose exec channel sends (or swallows) N MiB of zeros, driven by
 * the real OpenSSH client. The child reports its own user+system CPU time for the transfer, which
 * is what the shared two-core machine makes scarce; the wall time is printed too.
 * Bounded: N MiB per round, a fixed number of rounds, a 120 s timeout per transfer.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';

const CHILD = `
const ssh2 = require(process.env.SSH2_DIR);
const bytes = Number(process.env.BYTES);
const upload = process.env.UPLOAD === '1';
const perTick = process.env.PER_TICK === '1';
// ssh2's ed25519 generator makes an unreadable key about 1 in 300 times: retry.
let key;
do key = ssh2.utils.generateKeyPairSync('ed25519').private; while (ssh2.utils.parseKey(key) instanceof Error);
const srv = new ssh2.Server({ hostKeys: [key] }, (c) => {
  c.on('error', () => {}).on('authentication', (ctx) => ctx.accept()).on('ready', () => {
    c.on('session', (accept) => accept().on('exec', (a) => {
      const ch = a();
      const t0 = process.cpuUsage(); const w0 = process.hrtime.bigint();
      const done = () => {
        const u = process.cpuUsage(t0);
        process.stdout.write(JSON.stringify({ cpu: (u.user + u.system) / 1e6, wall: Number(process.hrtime.bigint() - w0) / 1e9 }) + '\\n');
        ch.exit(0); ch.end();
        setTimeout(() => process.exit(0), 200); // a normal exit writes --cpu-prof profiles
      };
      if (upload) {
        let got = 0;
        ch.on('data', (d) => { got += d.length; if (got >= bytes) done(); });
      } else {
        const chunk = Buffer.alloc(perTick ? 32 * 1024 : 64 * 1024);
        let sent = 0;
        const pump = () => {
          if (perTick) {
            if (sent >= bytes) return done();
            sent += chunk.length;
            return void ch.write(chunk, pump);
          }
          while (sent < bytes) { sent += chunk.length; if (!ch.write(chunk)) return ch.once('drain', pump); }
          done();
        };
        pump();
      }
    }));
  });
});
srv.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: srv.address().port }) + '\\n'));
`;

interface Sample {
  cpu: number;
  wall: number;
}

function once(dir: string, bytes: number, upload: boolean, cipher: string | undefined, perTick = false): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(process.env.SSH2_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.SSH2_CPU_PROF] : []), '-e', CHILD], {
      env: { ...process.env, SSH2_DIR: dir, BYTES: String(bytes), UPLOAD: upload ? '1' : '0', PER_TICK: perTick ? '1' : '0' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    child.on('exit', (code) => code && reject(new Error(`${dir}: the server exited with ${code}`)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${dir}: no result within 120 s`));
    }, 120_000);
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as { port?: number; cpu?: number; wall?: number };
        buf = buf.slice(nl + 1);
        if (msg.port) {
          const args = ['-F', '/dev/null', '-p', String(msg.port), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes'];
          if (cipher) args.push('-c', cipher);
          args.push('u@127.0.0.1', 'x');
          const ssh = spawn('ssh', args, { stdio: ['pipe', 'pipe', 'ignore'] });
          if (upload) {
            const zeros = Buffer.alloc(256 * 1024);
            let left = bytes;
            const feed = () => {
              while (left > 0) {
                left -= zeros.length;
                if (!ssh.stdin!.write(zeros)) return ssh.stdin!.once('drain', feed);
              }
              ssh.stdin!.end();
            };
            ssh.stdin!.on('error', () => {});
            feed();
          } else {
            ssh.stdout!.on('data', () => {});
            ssh.stdin!.end();
          }
        } else if (msg.cpu !== undefined) {
          clearTimeout(timer);
          resolve({ cpu: msg.cpu, wall: msg.wall ?? 0 });
        }
      }
    });
  });
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { mib: { type: 'string', default: '256' }, rounds: { type: 'string', default: '6' }, cipher: { type: 'string' }, upload: { type: 'boolean', default: false }, 'per-tick': { type: 'boolean', default: false } },
});
const bytes = Number(values.mib) * 2 ** 20;
const gib = bytes / 2 ** 30;
const samples = new Map<string, Sample[]>(positionals.map((d) => [d, []]));
for (let r = 0; r < Number(values.rounds); r++) {
  const order = r % 2 === 0 ? positionals : [...positionals].reverse();
  for (const dir of order) samples.get(dir)!.push(await once(dir, bytes, values.upload, values.cipher, values['per-tick']));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [dir, s] of samples) {
  const cpu = s.map((x) => x.cpu / gib);
  const mbps = s.map((x) => bytes / 2 ** 20 / x.wall);
  console.log(`${dir}: CPU s/GiB median ${median(cpu).toFixed(2)} (${cpu.map((x) => x.toFixed(2)).join(' ')}); MiB/s median ${median(mbps).toFixed(0)}`);
}

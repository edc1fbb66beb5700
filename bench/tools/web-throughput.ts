/**
 * `node build/bench/tools/web-throughput.js [MB] [ROUNDS]`: the browser door's output throughput
 * next to SSH's, on one in-process bridge (local backend). The web door: a `ws` client (what a
 * page's socket does, without a browser's rendering) reading `seq` output through the TerminalHub,
 * whose server-side screen (xterm headless) parses every byte. SSH: the real OpenSSH client
 * running the same `seq`, with a pty (`-tt`, as the terminal the page is) and without. MB/s of
 * output as the client received it, from the request to the exit; rounds alternate the paths.
 */
import { spawn } from 'node:child_process';
import { startTestBridge } from '../../test/helpers/bridge.ts';
import { sshArgs } from '../../test/helpers/ssh-client.ts';
import { startTerminalServer, TermClient, webIdentity } from '../../test/helpers/web-terminal.ts';

const MB = Number(process.argv[2] ?? 40);
const ROUNDS = Number(process.argv[3] ?? 3);
/** seq 1 N prints about 7.8 bytes a line around a few million. */
const N = Math.round((MB * 1e6) / 7.8);
const COMMAND = `seq 1 ${N}`;

async function web(url: string): Promise<number> {
  const c = new TermClient(url);
  const started = process.hrtime.bigint();
  await c.untilMessage('exit', 600_000);
  const s = Number(process.hrtime.bigint() - started) / 1e9;
  c.ws.close();
  return c.bytes / 1e6 / s;
}

function ssh(port: number, key: Parameters<typeof sshArgs>[1], tty: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let bytes = 0;
    const child = spawn('ssh', [...sshArgs(port, key), ...(tty ? ['-tt'] : []), 'bench@127.0.0.1', COMMAND], { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.on('data', (b: Buffer) => (bytes += b.length));
    child.once('error', reject);
    child.once('close', () => resolve(bytes / 1e6 / (Number(process.hrtime.bigint() - started) / 1e9)));
  });
}

const b = await startTestBridge({ backend: 'local', logLevel: 'warn' });
const server = await startTerminalServer(b.bridge.terminals, { me: webIdentity('tester@podbridge-test') });
const results: Record<string, number[]> = { web: [], 'ssh -tt': [], ssh: [] };
try {
  for (let r = 0; r < ROUNDS; r++) {
    results.web!.push(await web(server.url({ as: 'me', target: 'default.bench', cols: 120, rows: 40, command: COMMAND })));
    results['ssh -tt']!.push(await ssh(b.port, b.key, true));
    results.ssh!.push(await ssh(b.port, b.key, false));
  }
} finally {
  await server.close();
  await b.close();
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
console.log(`output of \`${COMMAND}\` (~${MB} MB), ${ROUNDS} rounds, MB/s (median; each round):`);
for (const [path, xs] of Object.entries(results)) console.log(`  ${path.padEnd(8)} ${median(xs).toFixed(1).padStart(6)}   ${xs.map((x) => x.toFixed(1)).join(' ')}`);

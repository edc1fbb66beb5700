/**
 * The bridge in a child process of its own, so a test can read its real resident memory, file
 * descriptors and event-loop delay (over IPC), and send it signals as an operator would.
 */
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConfigInput } from '../../src/config.ts';
import { compiled } from './paths.ts';
import { makeClientKey, type ClientKey } from './ssh-client.ts';

export interface BridgeStats {
  rss: number;
  heapUsed: number;
  fds: number;
  /** p99 event-loop delay in ms since the last reset. */
  loopDelayP99: number;
  connections: number;
  sessions: number;
}

export interface BridgeProcess {
  child: ChildProcess;
  port: number;
  key: ClientKey;
  logs: Array<Record<string, unknown>>;
  /** `gc`: collect garbage first, so heapUsed is what is really retained. */
  stats(opts?: { resetLoopDelay?: boolean; gc?: boolean }): Promise<BridgeStats>;
  /** Resolves with the exit code once the process ends. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Plain compiled JavaScript: no TypeScript loader in the child (one used to hang it at start). */
const entry = compiled('test/helpers/bridge-process-main.ts');

export async function startBridgeProcess(input: ConfigInput = {}): Promise<BridgeProcess> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-proc-'));
  const key = makeClientKey();
  const authorizedKeys = path.join(dir, 'authorized_keys');
  fs.writeFileSync(authorizedKeys, `${key.publicLine}\n`);
  const config: ConfigInput = { listen: '127.0.0.1:0', hostKey: [path.join(dir, 'host_key')], backend: 'local', authorizedKeys, logLevel: 'debug', ...input };
  const child = fork(entry, [JSON.stringify(config)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const logs: Array<Record<string, unknown>> = [];
  let buf = '';
  child.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const fail = (err: Error) => {
      child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      reject(err);
    };
    // Generous for a loaded CI machine; a child that never starts fails the test with its last lines.
    const timer = setTimeout(() => fail(new Error(`bridge process did not start within 30 s; last log lines: ${JSON.stringify(logs.slice(-5).map((l) => l.msg))}`)), 30_000);
    child.on('message', (m: { ready?: number }) => {
      if (m.ready) {
        clearTimeout(timer);
        resolve(m.ready);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`bridge process exited ${code}`));
    });
  });
  let seq = 0;
  return {
    child,
    port,
    key,
    logs,
    exited,
    stats: ({ resetLoopDelay = false, gc = false } = {}) =>
      new Promise((resolve) => {
        const id = ++seq;
        const onMessage = (m: { id?: number; stats?: BridgeStats }) => {
          if (m.id === id && m.stats) {
            child.off('message', onMessage);
            resolve(m.stats);
          }
        };
        child.on('message', onMessage);
        child.send({ id, stats: true, reset: resetLoopDelay, gc });
      }),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a real bridge in-process on a free loopback port with a throwaway host key. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { startBridge, type Bridge } from '../../src/bridge.ts';
import { buildConfig, type ConfigInput } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { makeClientKey, type ClientKey } from './ssh-client.ts';

export interface TestBridge {
  bridge: Bridge;
  port: number;
  key: ClientKey;
  dir: string;
  /** Parsed JSON log lines the bridge wrote. */
  logs: Array<Record<string, unknown>>;
  /** SIGTERM's path: sessions are told, may finish within `graceMs`. close() afterwards waits for it. */
  shutdown(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTestBridge(input: ConfigInput & { key?: ClientKey } = {}): Promise<TestBridge> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-bridge-'));
  const key = input.key ?? makeClientKey();
  const authorizedKeys = typeof input.authorizedKeys === 'string' ? input.authorizedKeys : path.join(dir, 'authorized_keys');
  if (!input.authorizedKeys) fs.writeFileSync(authorizedKeys, `${key.publicLine}\n`);
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const config = buildConfig({
    listen: '127.0.0.1:0',
    hostKey: [path.join(dir, 'host_ed25519')],
    backend: 'local',
    logLevel: 'debug',
    ...input,
    authorizedKeys,
  });
  const bridge = await startBridge(config, createLogger('debug', sink));
  let down: Promise<void> | null = null;
  return {
    bridge,
    port: bridge.server.address.port,
    key,
    dir,
    logs,
    shutdown: (graceMs: number) => (down ??= bridge.shutdown(graceMs)),
    close: async () => {
      await (down ?? bridge.close());
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

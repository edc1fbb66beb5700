import os from 'node:os';
import { conformance } from './suite.ts';
import { startTestBridge } from '../helpers/bridge.ts';

conformance({
  name: 'local backend',
  stdinEof: true,
  interruptStatus: 255,
  commandShell: os.userInfo().shell ?? '/bin/sh',
  errorCases: [],
  async start(options = {}) {
    const b = await startTestBridge({ backend: 'local', ...options });
    return { port: b.port, key: b.key, login: 'default.anything', logs: b.logs, shutdown: b.shutdown, close: b.close };
  },
});

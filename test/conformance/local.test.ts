import { conformance } from './suite.ts';
import { startTestBridge } from '../helpers/bridge.ts';

conformance({
  name: 'local backend',
  stdinEof: true,
  errorCases: [],
  async start() {
    const b = await startTestBridge({ backend: 'local' });
    return { port: b.port, key: b.key, login: 'default.anything', close: b.close };
  },
});

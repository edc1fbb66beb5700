// test-budget: file 300 s, test 120 s
import { forwardingConformance } from './forwarding-suite.ts';
import { startTestBridge } from '../helpers/bridge.ts';

forwardingConformance({
  name: 'local backend (127.0.0.1 of this machine)',
  halfClose: true,
  protocol: /^TCP to 127\.0\.0\.1:\d+ on this machine$/,
  async start() {
    const b = await startTestBridge({ backend: 'local' });
    const closed = 1; // tcpmux: nothing listens on port 1 here
    return {
      port: b.port,
      key: b.key,
      login: 'default.local',
      logs: b.logs,
      expose: (localPort) => localPort,
      closedPodPort: closed,
      refused: (p) => new RegExp(`this machine \\(local backend\\): nothing listens on port ${p}`),
      close: () => b.close(),
    };
  },
});

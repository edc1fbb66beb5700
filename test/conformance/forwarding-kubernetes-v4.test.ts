// test-budget: file 300 s, test 120 s
import { forwardingConformance } from './forwarding-suite.ts';
import { startTestBridge } from '../helpers/bridge.ts';
import { startTestCluster } from '../helpers/cluster.ts';

// Plain WebSocket v4.channel.k8s.io: one WebSocket per forwarded connection, no half-close.
forwardingConformance({
  name: 'kubernetes backend, pods/portforward over WebSocket v4.channel.k8s.io',
  halfClose: false,
  async start() {
    const cluster = await startTestCluster();
    const b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig });
    let next = 8000;
    return {
      port: b.port,
      key: b.key,
      login: 'team-a.web-1',
      logs: b.logs,
      expose: (localPort) => {
        const podPort = next++;
        cluster.api.exposePodPort('team-a', 'web-1', podPort, localPort);
        return podPort;
      },
      closedPodPort: 5432,
      refused: (p) => new RegExp(`pod web-1 in namespace team-a: nothing listens on port ${p} \\(on localhost in the pod\\)`),
      close: async () => {
        await b.close();
        await cluster.stop();
      },
    };
  },
});

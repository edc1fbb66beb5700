/** The forwarding suite against the fake kube-apiserver, with the port-forward protocols it serves. */
import type { PortForwardPath } from '../fixtures/kube-apiserver/portforward.ts';
import { startTestBridge } from '../helpers/bridge.ts';
import { startTestCluster } from '../helpers/cluster.ts';
import { forwardingConformance } from './forwarding-suite.ts';

export function kubernetesForwarding(name: string, paths: PortForwardPath[], protocol: RegExp, halfClose: boolean): void {
  forwardingConformance({
    name,
    halfClose,
    protocol,
    async start() {
      const cluster = await startTestCluster();
      cluster.api.setPortForwardPaths(paths);
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
}

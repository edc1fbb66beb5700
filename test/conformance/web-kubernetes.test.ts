import { webConformance } from './web-suite.ts';
import { startTestBridge } from '../helpers/bridge.ts';
import { startTestCluster } from '../helpers/cluster.ts';
import { webIdentity } from '../helpers/web-terminal.ts';

/** authorized_keys mode names an identity by its key's comment: the test key's. */
const IDENTITY = 'tester@podbridge-test';

webConformance({
  name: 'kubernetes backend (fake kube-apiserver)',
  async start() {
    const c = await startTestCluster();
    const b = await startTestBridge({ backend: 'kubernetes', kubeconfig: c.kubeconfig });
    return {
      hub: b.bridge.terminals,
      identity: webIdentity(IDENTITY),
      login: 'team-a.web-1',
      close: async () => {
        await b.close();
        await c.stop();
      },
    };
  },
  errorCase: { login: 'team-a.ghost', message: /pod "ghost" not found in namespace "team-a"/ },
});

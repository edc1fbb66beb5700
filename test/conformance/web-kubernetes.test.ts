import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { webConformance } from './web-suite.ts';
import { startTestBridge } from '../helpers/bridge.ts';
import { startTestCluster } from '../helpers/cluster.ts';
import { makeClientKey } from '../helpers/ssh-client.ts';
import { webIdentity } from '../helpers/web-terminal.ts';

/** A policy: `user` works in team-a, `watcher` may observe terminals there. */
function policyFile(dir: string): string {
  const [user, watcher] = ['user', 'watcher'].map((n) => makeClientKey(n));
  const file = path.join(dir, 'policy.yaml');
  fs.writeFileSync(file, `version: 1
identities:
  - name: user
    keys: [${user!.publicLine}]
  - name: watcher
    keys: [${watcher!.publicLine}]
rules:
  - identities: [user]
    namespaces: [team-a]
    pods: ['*']
    shell: true
    commands: true
    tty: true
  - identities: [watcher]
    namespaces: [team-a]
    pods: ['*']
    observe: true
`);
  return file;
}

webConformance({
  name: 'kubernetes backend (fake kube-apiserver)',
  async start() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pb-web-kube-'));
    const c = await startTestCluster();
    const b = await startTestBridge({ backend: 'kubernetes', kubeconfig: c.kubeconfig, policy: policyFile(dir) });
    return {
      hub: b.bridge.terminals,
      identity: webIdentity('user'),
      observer: webIdentity('watcher'),
      login: 'team-a.web-1',
      close: async () => {
        await b.close();
        await c.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  observe: true,
  errorCase: { login: 'team-a.ghost', message: /pod "ghost" not found in namespace "team-a"/ },
});

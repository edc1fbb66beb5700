/** The conformance harness for the Kubernetes backend, against the fake kube-apiserver. */
import assert from 'node:assert/strict';
import { conformance, type ErrorCase } from './suite.ts';
import { startTestBridge } from '../helpers/bridge.ts';
import { startTestCluster, type TestCluster } from '../helpers/cluster.ts';

export const errorCases: ErrorCase[] = [
  { what: 'unknown namespace', login: 'nope.web-1', message: /namespace "nope" not found; list namespaces with: kubectl get ns/ },
  { what: 'unknown pod', login: 'team-a.ghost', message: /pod "ghost" not found in namespace "team-a"/ },
  { what: 'container not in the pod (lists the containers)', login: 'team-a.web-1+nope', message: /container "nope" not found in pod "web-1" in namespace "team-a"; its containers: app, sidecar/ },
  { what: 'workload with no running pod', login: 'team-a.deploy/idle', message: /deployment "idle" in namespace "team-a" has no running pod/ },
  { what: 'unknown workload', login: 'team-a.sts/db', message: /statefulset "db" not found in namespace "team-a"/ },
  { what: 'pod not running (says its phase)', login: 'team-a.pending-1', message: /pod "pending-1" in namespace "team-a" is Pending, not Running/ },
  { what: 'container not running (says why)', login: 'team-a.crashing', message: /container "app" in pod "crashing" in namespace "team-a" is not running \(waiting: CrashLoopBackOff\)/ },
  { what: 'exec forbidden by RBAC (quotes the reason)', login: 'team-a.secret-1', message: /Kubernetes denied access: pods "secret-1" is forbidden: User "admin" cannot (create|get) resource "pods\/exec" in API group "" in the namespace "team-a"/ },
  {
    what: 'no shell in the image, for a command that needs one',
    login: 'team-a.distroless',
    command: 'echo should-not-run | cat',
    message: /container "app" in pod "distroless" in namespace "team-a" has no \/bin\/sh, and this command needs one \(pipes, redirections, variables, globs or several commands\); run a plain command, or add a shell with kubectl debug/,
  },
];


/** `protocols`: what exec accepts over WebSocket; `spdyProtocols`: over SPDY ([] refuses SPDY);
 *  `transport`: what must have carried every exec (the sessions' and the process control's). */
export function kubernetesConformance(
  name: string,
  protocols: string[] | undefined,
  stdinEof: boolean,
  spdyProtocols?: string[],
  transport?: { transport: 'websocket' | 'spdy'; protocol: string },
): void {
  let cluster: TestCluster;
  conformance({
    name,
    stdinEof,
    errorCases,
    async start() {
      cluster = await startTestCluster({ protocols, spdyProtocols });
      const b = await startTestBridge({ backend: 'kubernetes', kubeconfig: cluster.kubeconfig });
      return {
        port: b.port,
        key: b.key,
        login: 'team-a.web-1',
        close: async () => {
          await b.close();
          const execs = cluster.api.execs.map((e) => `${e.transport} ${e.protocol}`);
          await cluster.stop();
          if (transport !== undefined) {
            const want = `${transport.transport} ${transport.protocol}`;
            assert.ok(execs.length > 0 && execs.every((e) => e === want), `every exec over ${want}; got ${[...new Set(execs)].join(', ')}`);
          }
        },
      };
    },
  });
}

// test-budget: file 300 s, test 120 s
import { kubernetesForwarding } from './forwarding-kubernetes-harness.ts';

// 1.31+ (KEP-4006): SPDY/3.1 tunnelled in WebSocket, what kubectl tries first.
kubernetesForwarding('kubernetes, pods/portforward over SPDY/3.1 in WebSocket', ['websocket-spdy', 'spdy', 'websocket'], /^SPDY\/3\.1 in WebSocket \(SPDY\/3\.1\+portforward\.k8s\.io\)$/, true);

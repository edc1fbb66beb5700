// test-budget: file 300 s, test 120 s
import { kubernetesForwarding } from './forwarding-kubernetes-harness.ts';

// Before 1.31 (no SPDY tunnelled in WebSocket): SPDY/3.1, many connections on one upgrade.
kubernetesForwarding('kubernetes, pods/portforward over SPDY/3.1', ['spdy', 'websocket'], /^SPDY\/3\.1 \(portforward\.k8s\.io\)$/, true);

// test-budget: file 300 s, test 120 s
import { kubernetesForwarding } from './forwarding-kubernetes-harness.ts';

// An API server that passes only WebSocket: plain v4.channel.k8s.io, one WebSocket per
// forwarded connection, no half-close.
kubernetesForwarding('kubernetes, pods/portforward over WebSocket v4.channel.k8s.io', ['websocket'], /^v4\.channel\.k8s\.io over WebSocket$/, false);

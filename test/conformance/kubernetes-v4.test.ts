import { kubernetesConformance } from './kubernetes-harness.ts';

// The last resort: WebSocket v5 refused (before 1.30, or a proxy that does not pass v5) and SPDY
// refused (a proxy that strips it). Only here is stdin EOF impossible.
kubernetesConformance('kubernetes backend (fake kube-apiserver, WebSocket v4 only: v5 and SPDY refused)', ['v4.channel.k8s.io'], false, [], {
  transport: 'websocket',
  protocol: 'v4.channel.k8s.io',
});

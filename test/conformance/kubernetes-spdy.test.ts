import { kubernetesConformance } from './kubernetes-harness.ts';

// An API server before 1.30 (or any path that does not pass WebSocket v5 through) still serves
// SPDY/3.1, as kubectl finds: WebSocket offers stop at v4, SPDY negotiates v4.channel.k8s.io, and
// stdin EOF arrives as a FIN on the stdin stream.
kubernetesConformance('kubernetes backend (fake kube-apiserver, SPDY/3.1: WebSocket v5 refused)', ['v4.channel.k8s.io'], true, undefined, { transport: 'spdy', protocol: 'v4.channel.k8s.io' });

import { kubernetesConformance } from './kubernetes-harness.ts';

// An API server before 1.30 (or a kubelet reached directly) speaks exec v4 at most.
kubernetesConformance('kubernetes backend (fake kube-apiserver, v4 only: before 1.30)', ['v4.channel.k8s.io'], false);

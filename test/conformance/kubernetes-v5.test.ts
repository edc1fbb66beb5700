import { kubernetesConformance } from './kubernetes-harness.ts';

kubernetesConformance('kubernetes backend (fake kube-apiserver, exec v5)', undefined, true);

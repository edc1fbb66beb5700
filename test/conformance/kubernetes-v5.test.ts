import { kubernetesConformance } from './kubernetes-harness.ts';

kubernetesConformance('kubernetes backend (fake kube-apiserver, exec v5)', undefined, true, undefined, { transport: 'websocket', protocol: 'v5.channel.k8s.io' });

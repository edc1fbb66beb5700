/**
 * The few fields of Kubernetes objects that resolution reads, validated with zod so that
 * nothing untyped leaves this module. Unknown fields are dropped; missing optional fields are
 * normal (a Pending pod has no containerStatuses).
 */
import { z } from 'zod';

const ContainerSchema = z.object({ name: z.string() });

const ContainerStateSchema = z.object({
  running: z.object({}).optional(),
  waiting: z.object({ reason: z.string().optional(), message: z.string().optional() }).optional(),
  terminated: z
    .object({ reason: z.string().optional(), message: z.string().optional(), exitCode: z.number().optional() })
    .optional(),
});

const ContainerStatusSchema = z.object({
  name: z.string(),
  state: ContainerStateSchema.optional(),
  restartCount: z.number().optional(),
  ready: z.boolean().optional(),
  /** Changes when the container is restarted (`containerd://<id>`). */
  containerID: z.string().optional(),
});

const ConditionSchema = z.object({
  type: z.string(),
  status: z.string(),
  lastTransitionTime: z.string().nullish(),
});

export const PodSchema = z.object({
  metadata: z.object({
    name: z.string(),
    namespace: z.string().optional(),
    /** A pod deleted and created again under the same name (StatefulSets) has a new uid. */
    uid: z.string().optional(),
    annotations: z.record(z.string(), z.string()).nullish(),
    creationTimestamp: z.string().nullish(),
    deletionTimestamp: z.string().nullish(),
  }),
  spec: z
    .object({
      nodeName: z.string().nullish(),
      containers: z.array(ContainerSchema).default([]),
      initContainers: z.array(ContainerSchema).nullish(),
      ephemeralContainers: z.array(ContainerSchema).nullish(),
    })
    .default({ containers: [] }),
  status: z
    .object({
      phase: z.string().optional(),
      conditions: z.array(ConditionSchema).nullish(),
      containerStatuses: z.array(ContainerStatusSchema).nullish(),
      initContainerStatuses: z.array(ContainerStatusSchema).nullish(),
      ephemeralContainerStatuses: z.array(ContainerStatusSchema).nullish(),
    })
    .default({}),
});
export type Pod = z.infer<typeof PodSchema>;
export type ContainerStatus = z.infer<typeof ContainerStatusSchema>;

export const PodListSchema = z.object({ items: z.array(PodSchema).nullish() });

const LabelSelectorRequirementSchema = z.object({
  key: z.string(),
  operator: z.string(),
  values: z.array(z.string()).nullish(),
});
export type LabelSelectorRequirement = z.infer<typeof LabelSelectorRequirementSchema>;

export const LabelSelectorSchema = z.object({
  matchLabels: z.record(z.string(), z.string()).nullish(),
  matchExpressions: z.array(LabelSelectorRequirementSchema).nullish(),
});
export type LabelSelector = z.infer<typeof LabelSelectorSchema>;

/** Deployments, StatefulSets, DaemonSets, ReplicaSets and Jobs all hold `spec.selector`. */
export const WorkloadSchema = z.object({
  metadata: z.object({ name: z.string() }),
  spec: z.object({ selector: LabelSelectorSchema.nullish() }).default({}),
});
export type Workload = z.infer<typeof WorkloadSchema>;

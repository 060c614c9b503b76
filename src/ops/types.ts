/** Op data (what the planner puts into vertices) and results (what ops hand to their dependents). */
import type { ContentStore, Descriptor, History } from '../image/index.js';
import type { Snapshotter } from '../snapshotter/index.js';
import type { Downloads } from './fetch.js';
import type { CgroupLimits } from '../runtime/index.js';

/** Build secrets and ssh agents: provided per build, never part of op data or cache keys. */
export interface BuildSecrets {
  secrets: Map<string, { file?: string; env?: string }>;
  ssh: Map<string, string>;
}

export type { OpSpec, NetworkMode, RunMountSpec } from '../opspec/index.js';

export interface LayerRef {
  diffID: string;
  descriptor: Descriptor;
}

/** A filesystem state: the committed snapshot holding it and the layers that make it. */
export interface StateRef {
  kind: 'state';
  snapshot?: string;
  layers: LayerRef[];
  history: History[];
}

export interface ContextRef {
  kind: 'context';
  dir: string;
  ignore: string[];
}

export interface ExportRef {
  kind: 'export';
  manifest: Descriptor;
  configDigest: string;
}

export type OpResult = StateRef | ContextRef | ExportRef;

export interface OpsEnv {
  storeRoot: string;
  store: ContentStore;
  snapshotter: Snapshotter;
  /** Seconds; clamps layer mtimes and sets `created` for reproducible output. */
  sourceDateEpoch?: number;
  /** The build's timestamp for `created` fields when SOURCE_DATE_EPOCH is not set. */
  created: string;
  secrets?: BuildSecrets;
  /** The build's URL downloads, shared by cache keys and ADD steps. */
  downloads?: Downloads;
  /** Limits for every RUN step, and the build's cgroup their cgroups go under. */
  limits?: CgroupLimits;
  cgroupParent?: string;
  /** --max-layer-size and --max-image-size in bytes: the export refuses to name an image over them. */
  budgets?: { maxLayer?: number; maxImage?: number };
  /** --annotation: on the image manifest. */
  annotations?: Record<string, string>;
  /** `--cache-to type=inline`: more manifest annotations (the cache), made when the image is exported. */
  inlineCache?: () => Promise<Record<string, string>>;
}

/** Op data (what the planner puts into vertices) and results (what ops hand to their dependents). */
import type { ContentStore, Descriptor, History, ImageConfig } from '../image/index.js';
import type { Snapshotter } from '../snapshotter/index.js';
import type { SourceContent } from '../parser/index.js';

export type NetworkMode = 'host' | 'none';

export type RunMountSpec =
  | { type: 'bind'; target: string; source: string; from?: string; rw: boolean }
  | { type: 'cache'; target: string; id: string; sharing: 'shared' | 'private' | 'locked'; from?: string; source: string; mode: number; uid: number; gid: number; ro: boolean }
  | { type: 'tmpfs'; target: string; size?: number }
  | { type: 'secret'; target: string; id: string; env?: string; required: boolean; mode: number; uid: number; gid: number }
  | { type: 'ssh'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number };

/** Build secrets and ssh agents: provided per build, never part of op data or cache keys. */
export interface BuildSecrets {
  secrets: Map<string, { file?: string; env?: string }>;
  ssh: Map<string, string>;
}

export type OpSpec =
  | { kind: 'scratch' }
  | { kind: 'image'; name: string; manifestDigest: string }
  | { kind: 'context'; dir: string; ignore: string[] }
  | {
      kind: 'exec';
      args: string[];
      env: string[];
      cwd: string;
      user: string;
      network: NetworkMode;
      hostname: string;
      history: History[];
      createdBy: string;
      /** Files bind-mounted read-only for this step only (heredoc scripts under /dev/pipes). */
      files: { path: string; data: string; mode: number }[];
      /** Which env entries come from ARGs (for cache explanations). */
      argNames: string[];
      /** RUN --mount specs; `input` indexes the exec vertex's inputs (0 is the root filesystem). */
      mounts: (RunMountSpec & { input?: number })[];
      /** RUN --security=insecure: all capabilities, nothing masked (needs --allow security.insecure). */
      insecure: boolean;
    }
  | {
      kind: 'copy';
      sources: string[];
      contents: { path: string; data: string }[];
      dest: string;
      chown?: string;
      chmod?: string;
      fromContext: boolean;
      excludes: string[];
      history: History[];
      createdBy: string;
      verb: 'COPY' | 'ADD';
      /** Keep each source's path (relative to the context, or to a `./` in it) under the destination. */
      parents: boolean;
      /** ADD: extract archives (undefined = local archives yes, URLs no). */
      unpack?: boolean;
      /** ADD of a URL: sha256 the content must have. */
      checksum?: string;
      link: boolean;
    }
  | { kind: 'mkdir'; path: string; user: string; history: History[]; createdBy: string }
  | { kind: 'export'; config: Omit<ImageConfig, 'rootfs' | 'history' | 'created'>; names: string[]; history: History[] };

export type { SourceContent };

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
}

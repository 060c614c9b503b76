/** The planner's inputs, outputs and the state it carries while dispatching instructions. */
import type { Vertex } from '../builder/index.js';
import { TsbuildError } from '../errors/index.js';
import type { History, ImageConfig, Platform } from '../image/index.js';
import type { NetworkMode, OpSpec } from '../opspec/index.js';
import type { Dockerfile, Stage } from '../parser/index.js';
import type { StageResolver } from './stages.js';

export interface ResolvedBase {
  name: string;
  manifestDigest: string;
  config: ImageConfig;
}

export interface PlanOptions {
  dockerfile: Dockerfile;
  dockerfileName?: string;
  buildArgs: Map<string, string>;
  target?: string;
  contextDir: string;
  ignore: string[];
  names: string[];
  /** `build --label k=v`: labels on the final image, over the Dockerfile's. */
  labels?: Record<string, string>;
  network: NetworkMode;
  /** Entitlements granted with --allow (security.insecure). */
  allow?: string[];
  /** For every RUN step: --add-host entries, --ulimit values, --shm-size bytes. */
  extraHosts?: string[];
  ulimits?: { type: string; soft: number; hard: number }[];
  shmSize?: number;
  /** `build --platform`: the platform built for (default: this machine's). */
  platform?: Platform;
  /** A base image for a platform (its stage's). */
  resolveImage: (name: string, platform: Platform) => Promise<ResolvedBase>;
  /**
   * `build --build-context NAME=VALUE`: what FROM NAME, COPY --from=NAME and RUN --mount from=NAME
   * mean instead of the stage or image of that name. Keys are lower case, images in their short
   * form without `:latest` (`alpine`, `alpine:3.19`, `localhost:5000/app`).
   */
  namedContexts?: Map<string, NamedContext>;
}

/** A local directory (its files, as the build context's), or an image by reference. */
export type NamedContext = { kind: 'local'; dir: string; ignore?: string[] } | { kind: 'image'; ref: string };

export interface PlanWarning {
  message: string;
  line?: number;
}

export interface BuildGraph {
  root: Vertex<OpSpec>;
  targetStage: string;
  stagesBuilt: string[];
  warnings: PlanWarning[];
}

export class PlanError extends TsbuildError {
  constructor(message: string, line?: number, file = 'Dockerfile') {
    super('PLAN', line ? `${file}:${line}: ${message}` : message);
  }
}

/** What a planned stage hands to stages built on it. */
export interface StageResult {
  vertex: Vertex<OpSpec>;
  platform: Platform;
  config: ImageConfig;
  /** History entries of config-only instructions not yet attached to a layer. */
  pending: History[];
}

/** One build's planning: the options, the global scope, and memoized stage and image resolution. */
export interface PlanContext {
  o: PlanOptions;
  /** The Dockerfile's name in messages. */
  file: string;
  /** Its escape character (`\\`, or `` ` `` by the escape directive). */
  escape: string;
  warnings: PlanWarning[];
  /** Build args some ARG consumed (the rest are reported unused). */
  used: Set<string>;
  /** The automatic platform ARGs (TARGETPLATFORM, BUILDARCH, …). */
  auto: Map<string, string>;
  /** ARGs before the first FROM, with their values (undefined: declared without one). */
  globals: Map<string, string | undefined>;
  stages: StageResolver;
  target: Stage;
  /** The build context as a vertex. */
  context: Vertex<OpSpec>;
  /** Identifies "the same step" across builds, for explaining cache misses. */
  stepScope: string;
  /** A base image by name, resolved (and pulled) once per build. */
  resolve(name: string, line: number, platform: Platform): Promise<ResolvedBase>;
  /** A stage, planned once per build (on first use). */
  planStage(s: Stage): Promise<StageResult>;
  /** The --build-context a FROM or --from name means, if any; local ones as one vertex each. */
  named(name: string): { context: NamedContext; vertex?: Vertex<OpSpec> } | undefined;
}

/** The stage being planned: its vertex so far, its image config, its ARGs and step counter. */
export interface StageState {
  stage: Stage;
  /** What the stage's programs are built for and run as: FROM --platform, its base stage's, or the target. */
  platform: Platform;
  /** The Dockerfile's escape character, for expanding words. */
  escape: string;
  label: string;
  vertex: Vertex<OpSpec>;
  config: ImageConfig;
  pending: History[];
  /** ARGs declared in this stage, with their values (undefined = declared without a value). */
  args: Map<string, string | undefined>;
  cmdSet: boolean;
  step: number;
  steps: number;
}

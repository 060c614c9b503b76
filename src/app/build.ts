/**
 * `build`: a Dockerfile and a context become an image in the store. Reads the Dockerfile and
 * .dockerignore, plans (pulling FROM images as the pull policy says), imports remote cache, solves,
 * records the inputs for `verify`, auto-GCs, exports cache and writes outputs. Progress goes out as
 * events; nothing here prints.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { createSolver, type SolverEvent, type Vertex } from '../builder/index.js';
import { ChecksumMemos } from '../cache/index.js';
import { CancelledError, DockerfileSyntaxError, TsbuildError, UsageError, errnoCode } from '../errors/index.js';
import { formatPlatform, normalizeName, validateName, type CompressionSpec, type Platform } from '../image/index.js';
import { createOps, Downloads, type OpResult } from '../ops/index.js';
import type { OpSpec } from '../opspec/index.js';
import { parseDockerfile, parseDockerignore, DockerignoreError, type Dockerfile } from '../parser/index.js';
import { planBuild } from '../planner/index.js';
import { autoGc, gcConfig, openLease, readStoreConfig, reapAfterFull, type Lease, type Store } from '../store/index.js';
import { cgroups, delegatedToUser, isRootless, type CgroupLimits, type Rlimit } from '../runtime/index.js';
import { ROOTLESS_NO_LIMITS } from './rootless.js';
import { storeConfigLimits } from './limits.js';
import { logger, type OpOptions } from './events.js';
import { writeOutputs, type OutputSpec } from './outputs.js';
import { pullPolicy, resolveOrPull, type RegistryOptions } from './registry.js';
import { exportCache, importCaches, inlineCacheAnnotation, type CacheSpec } from './remotecache.js';
import { startAgents, type SecretsRequest } from './secrets.js';
import { BuildRecorder, type BuildRecord } from './history.js';
import { checksFor, enforceChecks } from './check.js';
import { checkTimelineFile, writeTimeline } from './timeline.js';
import { checkPlatforms } from './platform.js';
import { tagIndex } from './multiplatform.js';
import { recordInputs } from './inputs.js';
import { claimStep, leased } from './shared.js';
import { parseBuildContexts } from './buildcontext.js';


export interface BuildRequest extends RegistryOptions {
  /** The context directory. */
  context: string;
  /** The context directory is removed after the build (`build -`): its file checksums are not kept. */
  transientContext?: boolean;
  /** The Dockerfile (default `<context>/Dockerfile`). */
  dockerfile?: string;
  /** Names for the image (`name[:tag]`, normalised and validated here). */
  tags?: string[];
  target?: string;
  buildArgs?: Record<string, string>;
  /** `--build-context NAME=DIRECTORY|docker-image://IMAGE`, as given (checked here). */
  buildContexts?: string[];
  /** Network of RUN steps (default host, as buildkitd without CNI). */
  network?: 'host' | 'none' | 'default';
  /** Steps run at once (default: CPUs). */
  jobs?: number;
  noCache?: boolean;
  /** --annotation KEY=VALUE on the manifest; index:KEY=VALUE on a multi-platform build's index. */
  annotations?: Record<string, string>;
  indexAnnotations?: Record<string, string>;
  /** --max-layer-size, --max-image-size (bytes). */
  budgets?: { maxLayer?: number; maxImage?: number };
  /** Draw the build's timeline into this .svg or .html file (also when it fails). */
  timeline?: string;
  /** Stages whose steps ignore the cache. */
  noCacheFilter?: string[];
  secrets?: SecretsRequest;
  /** Entitlements (`security.insecure`, `network.host`). */
  allow?: string[];
  /** missing | always | never (default: TSBUILD_PULL, config.json, missing). */
  pull?: string;
  platform?: string;
  outputs?: OutputSpec[];
  cacheTo?: CacheSpec[];
  cacheFrom?: CacheSpec[];
  compression?: CompressionSpec;
  chunkSize?: number;
  /** Seconds; every timestamp in the output (default 0: reproducible). */
  sourceDateEpoch?: number;
  /** Where `--output dest=-` writes. */
  stdout?: Writable;
  /** Limits for every RUN step (default: `build` in the store's config.json). */
  limits?: CgroupLimits;
  /** `--label`: labels on the final image, over the Dockerfile's. */
  labels?: Record<string, string>;
  /** The Dockerfile's text itself (`-f -`); `dockerfile` then only names it in messages. */
  dockerfileText?: string;
  /** For every RUN step: /etc/hosts entries (`name:ip`), rlimits, /dev/shm size in bytes. */
  extraHosts?: string[];
  ulimits?: Rlimit[];
  shmSize?: number;
}

export interface ExplainStep {
  step: string;
  line: unknown;
  key: string;
  hit: boolean;
  reason: string | null;
  inputs: Record<string, string>;
}

export interface BuildResult {
  /** The config digest, as `docker build` prints it. */
  imageId: string;
  manifestDigest: string;
  names: string[];
  /** Each cached step's key, inputs and why it hit or missed (`--explain`). */
  steps: ExplainStep[];
  checksums: { filesRead: number; fromMemo: number };
}

const ENTITLEMENTS = ['security.insecure', 'network.host'];

export function readDockerfile(file: string): string {
  try {
    return checkText(fs.readFileSync(file, 'utf8'), file);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if (errnoCode(e) === 'ENOENT') throw new UsageError(`cannot read the Dockerfile: ${file} does not exist (give one with -f)`);
    if (errnoCode(e) === 'EISDIR') throw new UsageError(`${file} is a directory, not a Dockerfile`);
    throw e;
  }
}

/** A Dockerfile is text: a NUL or other control bytes mean a binary file, named but never printed. */
function checkText(text: string, file: string): string {
  if (/[\x00-\x08\x0e-\x1a\x1c-\x1f]/.test(text.slice(0, 8192))) throw new UsageError(`${file} is not a Dockerfile: it holds binary data (give the Dockerfile with -f)`);
  return text;
}

export function readIgnore(dockerfile: string, context: string): string[] {
  return ignoreFrom([dockerfile + '.dockerignore', path.join(context, '.dockerignore')]);
}

/** The first of these .dockerignore files that exists, parsed. */
function ignoreFrom(candidates: string[]): string[] {
  for (const cand of candidates) {
    let text: string;
    try {
      text = fs.readFileSync(cand, 'utf8');
    } catch {
      continue;
    }
    try {
      return parseDockerignore(text);
    } catch (e) {
      if (e instanceof DockerignoreError) throw new UsageError(`${cand}: ${e.message}`);
      throw e;
    }
  }
  return [];
}

export function contextDir(dir: string): string {
  const context = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(context);
  } catch {
    throw new UsageError(`build context ${context} does not exist`);
  }
  if (!st.isDirectory()) throw new UsageError(`build context ${context} is not a directory`);
  return context;
}

function imageNames(tags: string[]): string[] {
  return tags.map((t) => {
    const n = normalizeName(t);
    try {
      validateName(n);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    return n;
  });
}

/** The Dockerfile as the user named it, for messages: relative to the working directory. */
function displayName(file: string): string {
  return path.relative(process.cwd(), file) || file;
}

export function parseFile(text: string, file: string): Dockerfile {
  try {
    return parseDockerfile(text, displayName(file));
  } catch (e) {
    if (e instanceof DockerfileSyntaxError) e.file = displayName(file);
    throw e;
  }
}

/** The request checked and its files read: everything the plan needs besides the store. */
function readRequest(req: BuildRequest) {
  const context = contextDir(req.context);
  const dockerfile = path.resolve(req.dockerfile ?? path.join(context, 'Dockerfile'));
  const names = imageNames(req.tags ?? []);
  const network = req.network ?? 'host';
  if (network !== 'host' && network !== 'none' && network !== 'default') throw new UsageError(`--network ${String(network)}: RUN steps support host, none or default (a private network with NAT)`);
  const jobs = req.jobs ?? os.availableParallelism();
  if (!(jobs >= 1)) throw new UsageError(`--jobs ${jobs}: give a number of at least 1`);
  for (const a of req.allow ?? []) if (!ENTITLEMENTS.includes(a)) throw new UsageError(`--allow ${a}: known entitlements are ${ENTITLEMENTS.join(' and ')}`);
  const text = req.dockerfileText !== undefined ? checkText(req.dockerfileText, 'the Dockerfile on standard input') : readDockerfile(dockerfile);
  const df = parseFile(text, dockerfile);
  const platforms = checkPlatforms(req.platform, df.stages.some((s) => s.instructions.some((i) => i.kind === 'run')), req.outputs ?? []);
  if (platforms.length < 2 && Object.keys(req.indexAnnotations ?? {}).length > 0) {
    throw new UsageError('--annotation index:…: a single-platform image has no index; annotate its manifest (manifest:KEY=VALUE), or build several platforms (--platform a,b)');
  }
  return {
    platforms,
    context, dockerfile, network, jobs, text, names,
    buildArgs: new Map(Object.entries(req.buildArgs ?? {})),
    // A local named context is read with its own .dockerignore, as BuildKit's.
    namedContexts: new Map([...parseBuildContexts(req.buildContexts ?? [])].map(([k, c]) => [k, c.kind === 'local' ? { ...c, ignore: ignoreFrom([path.join(c.dir, '.dockerignore')]) } : c])),
    df,
    ignore: readIgnore(req.dockerfileText !== undefined ? path.join(context, 'Dockerfile') : dockerfile, context),
  };
}

type CacheEvent = Extract<SolverEvent, { type: 'cache' }>;

/** Runs the graph's steps with the store's cache (and any imported one); collects the cache events. */
async function solve(store: Store, req: BuildRequest, root: Vertex<OpSpec>, jobs: number, o: OpOptions, lease: Lease): Promise<{ result: OpResult; cacheEvents: CacheEvent[]; memo: ChecksumMemos }> {
  const emit = o.onEvent ?? (() => undefined);
  const remote = req.cacheFrom?.length ? await importCaches(store, req.cacheFrom, req, { signal: o.signal, log: logger(o) }) : undefined;
  const memo = new ChecksumMemos(store.cache.memoDir, req.transientContext ? [req.context] : []);
  const noCacheStages = new Set((req.noCacheFilter ?? []).map((x) => x.toLowerCase()));
  const cacheEvents: CacheEvent[] = [];
  const sourceDateEpoch = req.sourceDateEpoch ?? 0;
  // Every RUN step gets a cgroup under this build's own, which goes when the build ends.
  const cgroupParent = `build-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const limits = req.limits ?? storeConfigLimits(readStoreConfig(store.root).build, store.root);
  gcConfig(store.root); // a GC setting that does not parse fails the build before it starts, not after
  if (isRootless() && !delegatedToUser() && limits && Object.keys(limits).length > 0) emit({ type: 'warning', message: ROOTLESS_NO_LIMITS });
  const downloads = new Downloads(path.join(store.root, 'tmp', `dl-${process.pid}-${crypto.randomBytes(4).toString('hex')}`), req.secrets);
  const ops = createOps(
      {
        storeRoot: store.root,
        store: store.content,
        snapshotter: store.snapshotter,
        sourceDateEpoch,
        created: new Date(sourceDateEpoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        secrets: req.secrets,
        downloads,
        limits,
        cgroupParent,
        budgets: req.budgets,
        annotations: req.annotations,
        // The steps below the export have all reported their keys by the time it runs.
        ...(req.cacheTo?.some((c) => c.type === 'inline') ? { inlineCache: () => inlineCacheAnnotation(store, cacheEvents, root) } : {}),
      },
      { index: store.cache, memo, remote },
  );
  const solver = createSolver<OpSpec, OpResult>({
    // A source (base image, context) is resolved, or pulled, without the GC lock: it can take long.
    opFor: (v) => leased(ops(v), store.root, lease, ['scratch', 'image', 'context'].includes(v.op.kind), (r) => present(store, r)),
    concurrency: jobs,
    noCache: (v) => (req.noCache ?? false) || noCacheStages.has(String(v.meta['stage'] ?? '')),
    claim: (key, signal, onWait) => claimStep(store.root, key, signal, onWait),
    onEvent: (e) => {
      if (e.type === 'cache') cacheEvents.push(e);
      emit({ type: 'solver', event: e });
    },
  });
  const stopAgents = req.secrets ? await startAgents(req.secrets, path.join(store.root, 'tmp')) : () => undefined;
  try {
    return { result: await solver.solve(root, { signal: o.signal }), cacheEvents, memo };
  } finally {
    stopAgents();
    downloads.dispose();
    await cgroups().open(cgroupParent)?.remove();
    emit({ type: 'solved' });
    memo.save();
  }
}

/** `"build"` in config.json, with the flags' names or camelCase, numbers or strings. */
/** Whether a result's snapshot and layer blobs are still in the store (a GC may have run). */
async function present(store: Store, r: OpResult): Promise<boolean> {
  if (r.kind !== 'state') return true;
  if (r.snapshot && !(await store.snapshotter.stat(r.snapshot).then(() => true, () => false))) return false;
  return r.layers.every((l) => store.content.has(l.descriptor.digest));
}

export async function build(store: Store, req: BuildRequest, outer: OpOptions = {}): Promise<BuildResult> {
  const recorder = new BuildRecorder(path.join(store.root, 'history'));
  const o: OpOptions = {
    ...outer,
    onEvent: (e) => {
      if (e.type === 'solver') recorder.event(e.event);
      outer.onEvent?.(e);
    },
  };
  if (req.timeline) checkTimelineFile(req.timeline);
  const record = (status: BuildRecord['status'], extra: Partial<BuildRecord> = {}) => {
    const problem = recorder.save(store, {
      status, context: req.context, dockerfile: req.dockerfile ?? path.join(req.context, 'Dockerfile'), target: req.target, names: req.tags ?? [], ...extra,
    });
    if (problem) outer.onEvent?.({ type: 'warning', message: problem });
    // Drawn for failed builds too: that is when a picture of where the time went helps most.
    else if (req.timeline) writeTimeline(store, recorder.id, req.timeline);
  };
  // What this build takes from the store and makes in it is kept from GC run meanwhile by others.
  const lease = openLease(store.root);
  let result: BuildResult;
  try {
    result = await buildRecorded(store, req, o, lease);
    record('completed', { imageId: result.imageId, names: result.names });
  } catch (e) {
    record(e instanceof CancelledError || o.signal?.aborted ? 'cancelled' : 'failed', { error: (e as Error).message });
    outer.onEvent?.({ type: 'log', line: `the whole output of every step: tsbuild builds logs ${recorder.id}` });
    // Retired duplicates are the store's own deferred deletions: on a full disk they go at once.
    const freed = await reapAfterFull(store, e).catch(() => undefined);
    if (freed?.trees) outer.onEvent?.({ type: 'warning', message: `the disk was full: deleted ${freed.trees} retired snapshot trees (duplicates of snapshots the store has, waiting to be deleted); run the build again` });
    throw e;
  } finally {
    lease.close();
  }
  await autoGc(store);
  return result;
}

async function buildRecorded(store: Store, req: BuildRequest, o: OpOptions, lease: Lease): Promise<BuildResult> {
  const r = readRequest(req);
  const checks = checksFor(r.df, r.text, r.context, r.ignore);
  for (const f of checks.findings) o.onEvent?.({ type: 'warning', message: `${f.rule}: ${f.message}`, ...(f.line ? { line: f.line } : {}) });
  enforceChecks(checks, r.dockerfile);
  const log = logger(o);
  // Several platforms: each built in turn (what they share comes from the cache the first made), its
  // image unnamed until the index of them all gets the names.
  const multi = r.platforms.length > 1;
  const built: Built[] = [];
  for (const p of r.platforms.length ? r.platforms : [undefined]) {
    if (multi) log(`building for ${formatPlatform(p!)}`);
    built.push(await buildOne(store, req, r, o, lease, p, multi ? [] : r.names));
  }
  const image = multi ? await tagIndex(store.content, built.map((b) => b.result.manifest), r.names, req.indexAnnotations) : built[0]!.result.manifest;
  if (multi && r.names.length === 0) o.onEvent?.({ type: 'warning', message: 'a multi-platform image without a name is not kept as one: each platform\'s image stays unnamed (listed as <none>); give -t to keep the index' });
  await writeOutputs(store, req.outputs ?? [], image.digest, { ...req, signal: o.signal, log, mtime: req.sourceDateEpoch ?? 0 });
  return {
    imageId: multi ? image.digest : built[0]!.result.configDigest,
    manifestDigest: image.digest,
    names: r.names,
    steps: built.flatMap((b) =>
      b.cacheEvents
        .filter((e) => e.vertex.meta['stepId'] !== undefined)
        .map((e) => ({ step: e.vertex.name, line: e.vertex.meta['line'], key: e.key, hit: e.hit, reason: e.reason ?? null, inputs: e.material })),
    ),
    checksums: { filesRead: built.reduce((a, b) => a + b.memo.stats.hashed, 0), fromMemo: built.reduce((a, b) => a + b.memo.stats.memoHits, 0) },
  };
}

type Built = Awaited<ReturnType<typeof solve>> & { result: Extract<OpResult, { kind: 'export' }> };

/** One platform's image: planned, solved, its inputs recorded for `verify`, its cache exported. */
async function buildOne(store: Store, req: BuildRequest, r: ReturnType<typeof readRequest>, o: OpOptions, lease: Lease, platform: Platform | undefined, names: string[]): Promise<Built> {
  const log = logger(o);
  const policy = pullPolicy(req.pull, store.root);
  const graph = await planBuild({
    dockerfile: r.df,
    dockerfileName: displayName(r.dockerfile),
    buildArgs: r.buildArgs,
    namedContexts: r.namedContexts,
    target: req.target,
    contextDir: r.context,
    ignore: r.ignore,
    names,
    labels: req.labels,
    network: r.network,
    extraHosts: req.extraHosts,
    ulimits: req.ulimits,
    shmSize: req.shmSize,
    allow: req.allow ?? [],
    platform,
    resolveImage: async (name, p) => {
      const img = await resolveOrPull(store, name, { ...req, signal: o.signal, log, policy, platform: formatPlatform(p) });
      return { name: img.name ?? name, manifestDigest: img.manifestDigest, config: img.config };
    },
  });
  for (const w of graph.warnings) o.onEvent?.({ type: 'warning', message: w.message, line: w.line });
  const solved = await solve(store, req, graph.root, r.jobs, o, lease);
  const result = solved.result;
  if (result.kind !== 'export') throw new TsbuildError('INTERNAL', 'build produced no image');
  recordInputs(store.root, result.manifest.digest, {
    context: r.context,
    dockerfile: r.dockerfile,
    target: req.target,
    buildArgs: Object.fromEntries(r.buildArgs),
    ...(r.namedContexts.size ? { buildContexts: [...r.namedContexts].map(([k, c]) => `${k}=${c.kind === 'local' ? c.dir : `docker-image://${c.ref}`}`) } : {}),
    network: r.network,
    sourceDateEpoch: req.sourceDateEpoch !== undefined ? String(req.sourceDateEpoch) : undefined,
    dockerfileDigest: 'sha256:' + crypto.createHash('sha256').update(r.text).digest('hex'),
    labels: req.labels,
    ...(platform ? { platform: formatPlatform(platform) } : {}),
  });
  for (const spec of req.cacheTo ?? []) await exportCache(store, spec, solved.cacheEvents, graph.root, req, { signal: o.signal, log });
  return { ...solved, result };
}

/**
 * The planner turns a parsed Dockerfile into a build graph, the way BuildKit's dispatcher does: only
 * the stages the target needs, each instruction dispatched to one function that either adds a vertex
 * (RUN, COPY, ADD, WORKDIR) or changes the stage's image config, with ARG/ENV scoping and expansion
 * as BuildKit does it. Its only I/O is the injected `resolveImage`.
 */
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { vertex, type Vertex } from '../builder/index.js';
import { DEFAULT_PATH, configPlatform, formatPlatform, hostPlatform, normalizePlatform, samePlatform, type ImageConfig, type Platform } from '../image/index.js';
import type { OpSpec } from '../opspec/index.js';
import { instructionFromNode, parseAST, type Instruction, type Stage } from '../parser/index.js';
import { envToMap, setEnv } from './config.js';
import {
  planArg, planCmd, planEnv, planExpose, planHealthcheck, planMaintainer, planOnbuild, planShell, planStopSignal, planUser, planVolume, type Ins,
} from './config-instructions.js';
import { PROXY_ARGS, expand, globalArgs, mapOf, platformArgs } from './scope.js';
import { StageResolver } from './stages.js';
import { planCopy, planRun, planWorkdir } from './steps.js';
import { PlanError, type BuildGraph, type PlanContext, type PlanOptions, type ResolvedBase, type StageResult, type StageState } from './types.js';

type Handler<K extends Instruction['kind']> = (ctx: PlanContext, st: StageState, ins: Ins<K>) => void | Promise<void>;

/** One function per instruction (FROM is the stage itself). */
const DISPATCH: { [K in Instruction['kind']]: Handler<K> } = {
  from: () => undefined,
  arg: planArg,
  env: planEnv,
  label: planEnv,
  maintainer: planMaintainer,
  workdir: planWorkdir,
  user: planUser,
  cmd: planCmd,
  entrypoint: planCmd,
  shell: planShell,
  expose: planExpose,
  volume: planVolume,
  stopsignal: planStopSignal,
  healthcheck: planHealthcheck,
  onbuild: planOnbuild,
  run: planRun,
  copy: planCopy,
  add: planCopy,
};

function dispatch(ctx: PlanContext, st: StageState, ins: Instruction): void | Promise<void> {
  return (DISPATCH[ins.kind] as Handler<Instruction['kind']>)(ctx, st, ins as Ins<Instruction['kind']>);
}

export async function planBuild(o: PlanOptions): Promise<BuildGraph> {
  const df = o.dockerfile;
  const file = o.dockerfileName ?? 'Dockerfile';
  const used = new Set<string>();
  const targetPlatform = o.platform ?? hostPlatform();
  const auto = platformArgs(targetPlatform);
  const globals = globalArgs(df, o.buildArgs, used, auto);
  const named = new Map([...(o.namedContexts ?? [])].map(([k, v]) => [namedContextKey(k), v] as const));
  const stages = new StageResolver(df, mapOf(globals, auto), file, (ref) => named.has(namedContextKey(ref)));
  const target = stages.target(o.target);
  const needed = stages.needed(target);
  const images = new Map<string, ResolvedBase>();
  const namedVertices = new Map<string, Vertex<OpSpec>>();
  const planning = new Map<number, Promise<StageResult>>();
  const stagesBuilt: string[] = [];
  const ctx: PlanContext = {
    o,
    file,
    escape: df.escapeToken,
    warnings: df.warnings.map((w) => ({ message: w.short, line: w.line })),
    used,
    auto,
    globals,
    stages,
    target,
    context: vertex({ kind: 'context', dir: path.resolve(o.contextDir), ignore: o.ignore }, [], 'load build context'),
    stepScope: `${path.resolve(o.contextDir)}#${file}`,
    named(name) {
      const k = namedContextKey(name);
      const c = named.get(k);
      if (!c) return undefined;
      if (c.kind === 'image') return { context: c };
      let v = namedVertices.get(k);
      if (!v) {
        v = vertex({ kind: 'context', dir: path.resolve(c.dir), ignore: c.ignore ?? [] }, [], `load build context ${k}`);
        namedVertices.set(k, v);
      }
      return { context: c, vertex: v };
    },
    async resolve(name, line, platform) {
      const key = `${formatPlatform(platform)} ${name}`;
      let r = images.get(key);
      if (!r) {
        try {
          r = await o.resolveImage(name, platform);
        } catch (e) {
          if (e instanceof TsbuildError) throw new PlanError(`FROM ${name}: ${e.message}`, line, file);
          throw e;
        }
        images.set(key, r);
        // A single-platform base of another platform is all a registry may have: BuildKit builds on
        // it and says so (its InvalidBaseImagePlatform check); so does tsbuild, never silently.
        const have = r.config.architecture ? { ...configPlatform(r.config), os: r.config.os || 'linux' } : undefined;
        if (have && !samePlatform(have, platform)) {
          ctx.warnings.push({ message: `InvalidBaseImagePlatform: Base image ${name} was pulled with platform "${formatPlatform(have)}", expected "${formatPlatform(platform)}" for current build`, line });
        }
      }
      return r;
    },
    // Stages are planned on first use (memoized): the ones the target needs, in order, plus any that
    // only an ONBUILD trigger of a base names (`ONBUILD COPY --from=x`), found while planning.
    planStage(s) {
      let p = planning.get(s.index);
      if (!p) {
        stagesBuilt.push(s.name ?? `stage-${s.index}`);
        p = planStageNow(ctx, s);
        planning.set(s.index, p);
      }
      return p;
    },
  };
  for (const s of df.stages) if (needed.has(s.index)) await ctx.planStage(s);

  const unused = [...o.buildArgs.keys()].filter((k) => !used.has(k) && !PROXY_ARGS.includes(k) && !k.startsWith('BUILDKIT_') && !k.startsWith('SOURCE_DATE_EPOCH'));
  if (unused.length) ctx.warnings.push({ message: `One or more build-args [${unused.join(' ')}] were not consumed` });
  const fin = await ctx.planStage(target);
  const cfg = fin.config;
  if (o.labels && Object.keys(o.labels).length) cfg.config.Labels = { ...cfg.config.Labels, ...o.labels };
  const root = vertex<OpSpec>(
    {
      kind: 'export',
      config: { architecture: cfg.architecture, os: cfg.os, ...(cfg.variant ? { variant: cfg.variant } : {}), ...(cfg.author ? { author: cfg.author } : {}), config: cfg.config },
      names: o.names,
      history: fin.pending,
    },
    [fin.vertex],
    'exporting to image',
  );
  return { root, targetStage: target.name ?? `stage-${target.index}`, stagesBuilt, warnings: ctx.warnings };
}

/** FROM --platform (expanded with the global ARGs and the automatic ones), else the build's target. */
function stagePlatform(ctx: PlanContext, s: Stage): Platform | undefined {
  if (s.from.platform === undefined) return undefined;
  const line = s.from.range.startLine;
  const want = expand(s.from.platform, mapOf(ctx.globals, ctx.auto), line, ctx.escape);
  if (want.trim() === '') throw new PlanError(`FROM --platform=${s.from.platform}: the platform is empty after expansion`, line, ctx.file);
  try {
    return normalizePlatform(want);
  } catch (e) {
    throw new PlanError(`FROM --platform=${want}: ${(e as Error).message}`, line, ctx.file);
  }
}

/** The state a stage starts from: another stage's result, scratch, or an image. */
async function stageStart(ctx: PlanContext, s: Stage, label: string, steps: number): Promise<Pick<StageState, 'vertex' | 'config' | 'pending' | 'platform'>> {
  let baseName = ctx.stages.fromName(s);
  const line = s.from.range.startLine;
  const nc = ctx.named(baseName);
  if (nc?.vertex) {
    // FROM a local named context: its files are the stage's filesystem, with an empty config.
    const p = stagePlatform(ctx, s) ?? ctx.o.platform ?? hostPlatform();
    const empty = vertex<OpSpec>({ kind: 'scratch' }, [], `[${label} 1/${steps}] FROM ${baseName}`, { stage: label, line });
    const files = vertex<OpSpec>(
      { kind: 'copy', sources: ['.'], contents: [], dest: '/', fromContext: false, excludes: [], history: [], createdBy: `FROM ${baseName} (build context) # buildkit`, verb: 'COPY', parents: false, link: false },
      [empty, nc.vertex],
      `[${label} 1/${steps}] FROM ${baseName} (build context ${path.resolve((nc.context as { dir: string }).dir)})`,
      { stage: label, line },
    );
    return { platform: p, vertex: files, config: emptyConfig(p), pending: [] };
  }
  if (nc?.context.kind === 'image') baseName = nc.context.ref;
  const baseStage = ctx.stages.stageRef(baseName, s.index, line);
  if (baseStage) {
    // A stage on another stage is that stage's platform, as in BuildKit.
    const b = await ctx.planStage(baseStage);
    return { vertex: b.vertex, config: JSON.parse(JSON.stringify(b.config)) as ImageConfig, pending: [...b.pending], platform: b.platform };
  }
  const p = stagePlatform(ctx, s) ?? ctx.o.platform ?? hostPlatform();
  if (baseName.toLowerCase() === 'scratch') {
    return {
      platform: p,
      vertex: vertex({ kind: 'scratch' }, [], `[${label} 1/${steps}] FROM scratch`, { stage: label, line }),
      config: emptyConfig(p),
      pending: [],
    };
  }
  const img = await ctx.resolve(baseName, line, p);
  const config = JSON.parse(JSON.stringify(img.config)) as ImageConfig;
  config.config ??= {};
  if (!envToMap(config.config.Env).has('PATH')) config.config.Env = setEnv(config.config.Env ?? [], 'PATH', DEFAULT_PATH);
  const v = vertex<OpSpec>({ kind: 'image', name: img.name, manifestDigest: img.manifestDigest }, [], `[${label} 1/${steps}] FROM ${img.name}`, { stage: label, line });
  return { vertex: v, config, pending: [], platform: p };
}

/** BuildKit's emptyImage: the default PATH and WorkingDir "/" (part of the config digest). */
function emptyConfig(p: Platform): ImageConfig {
  return { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}), config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' }, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
}

/**
 * The key a name has among --build-context names: lower case, and an image reference in its short
 * form (`docker.io/library/alpine:latest` is `alpine`), as BuildKit matches them.
 */
export function namedContextKey(name: string): string {
  return name.toLowerCase().replace(/^(?:docker\.io|index\.docker\.io|registry-1\.docker\.io)\/(?:library\/)?/, '').replace(/:latest$/, '');
}

/** The base's ONBUILD triggers, parsed as if written at this stage's FROM line. */
function onbuildTriggers(st: StageState): Instruction[] {
  const triggers = st.config.config.OnBuild ?? [];
  st.config.config.OnBuild = null;
  const out: Instruction[] = [];
  for (const t of triggers) {
    for (const n of parseAST(t).ast.children) {
      n.startLine = st.stage.from.range.startLine;
      n.endLine = st.stage.from.range.endLine;
      out.push(instructionFromNode(n));
    }
  }
  return out;
}

async function planStageNow(ctx: PlanContext, s: Stage): Promise<StageResult> {
  const label = s.name ?? `stage-${s.index}`;
  const start = await stageStart(ctx, s, label, s.instructions.length + 1);
  const st: StageState = { stage: s, label, escape: ctx.escape, ...start, args: new Map(), cmdSet: false, step: 1, steps: s.instructions.length + 1 };
  st.config.history = [];
  // ONBUILD triggers of the base run first, then are cleared.
  const instrs = [...onbuildTriggers(st), ...s.instructions];
  st.steps = instrs.length + 1;
  for (const ins of instrs) {
    st.step++;
    await dispatch(ctx, st, ins);
  }
  return { vertex: st.vertex, config: st.config, pending: st.pending, platform: st.platform };
}

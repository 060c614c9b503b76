/**
 * Instructions that make a vertex (a layer, possibly empty): WORKDIR, RUN, COPY and ADD. Each takes
 * the history entries of the config-only instructions before it.
 */
import path from 'node:path';
import { vertex, type Vertex } from '../builder/index.js';
import type { NetworkMode, OpSpec } from '../opspec/index.js';
import { chompHeredocContent } from '../parser/index.js';
import { formatPlatform, hostPlatform } from '../image/index.js';
import { envToMap } from './config.js';
import type { Ins } from './config-instructions.js';
import { parseRunMount, type RunMount } from './mounts.js';
import { PROXY_ARGS, expand, stageScope } from './scope.js';
import { PlanError, type PlanContext, type StageState } from './types.js';

/** The history entries waiting for a layer; the step that makes one takes them. */
function take(st: StageState) {
  const h = st.pending;
  st.pending = [];
  return h.map((x) => ({ ...x }));
}

/** The vertex's progress name and metadata (stage, line, and a step id stable across builds). */
function step(ctx: PlanContext, st: StageState, ins: Ins<'workdir' | 'run' | 'copy' | 'add'>) {
  const first = ins.original.split('\n')[0];
  return {
    name: `[${st.label} ${st.step}/${st.steps}] ${first}`,
    meta: { stage: st.label, line: ins.range.startLine, text: first, stepId: `${ctx.stepScope}#${st.label}#${st.step}` },
  };
}

/** A stage (planned on first use) or an image, as a COPY --from or RUN --mount from= source. */
async function fromSource(ctx: PlanContext, st: StageState, from: string, line: number): Promise<Vertex<OpSpec>> {
  const nc = ctx.named(from);
  if (nc?.vertex) return nc.vertex;
  if (nc?.context.kind === 'image') from = nc.context.ref;
  const dep = nc ? undefined : ctx.stages.stageRef(from, st.stage.index, line);
  if (dep) return (await ctx.planStage(dep)).vertex;
  const img = await ctx.resolve(from, line, st.platform);
  return vertex({ kind: 'image', name: img.name, manifestDigest: img.manifestDigest }, [], `[${st.label}] load ${img.name}`);
}

export function planWorkdir(ctx: PlanContext, st: StageState, ins: Ins<'workdir'>): void {
  const c = st.config.config;
  const wd = path.posix.resolve(c.WorkingDir || '/', expand(ins.value, stageScope(st), ins.range.startLine, st.escape));
  c.WorkingDir = wd;
  const { name, meta } = step(ctx, st, ins);
  st.vertex = vertex({ kind: 'mkdir', path: wd, user: c.User ?? '', history: take(st), createdBy: `WORKDIR ${wd}` }, [st.vertex], name, meta);
}

/** RUN's argv, and the heredoc files it needs (a shebang heredoc runs as a file under /dev/pipes). */
function runCommand(st: StageState, ins: Ins<'run'>): { args: string[]; files: { path: string; data: string; mode: number }[] } {
  const shell = st.config.config.Shell ?? ['/bin/sh', '-c'];
  if (!ins.prependShell) return { args: ins.cmd, files: [] };
  let script = ins.cmd.join(' ');
  const files: { path: string; data: string; mode: number }[] = [];
  if (ins.files.length > 0) {
    const only = ins.files.length === 1 && /^\s*\d*<<-?\s*\S+\s*$/.test(script);
    if (only) {
      const f = ins.files[0]!;
      script = f.chomp ? chompHeredocContent(f.data) : f.data;
      // A shebang body is written as an executable under /dev/pipes and run directly (BuildKit).
      if (script.startsWith('#!')) files.push({ path: `/dev/pipes/${f.name}`, data: script, mode: 0o755 });
    } else {
      script += '\n' + ins.files.map((f) => f.data + f.name + '\n').join('');
    }
  }
  return { args: files.length ? [files[0]!.path] : [...shell, script], files };
}

/** RUN --mount specs; bind and cache mounts with a source become extra inputs of the exec vertex. */
async function runMounts(ctx: PlanContext, st: StageState, ins: Ins<'run'>): Promise<{ mounts: (RunMount & { input?: number })[]; inputs: Vertex<OpSpec>[] }> {
  const line = ins.range.startLine;
  const inputs: Vertex<OpSpec>[] = [];
  const mounts: (RunMount & { input?: number })[] = [];
  let sshCount = 0;
  for (const raw of ins.mounts) {
    let m: RunMount;
    try {
      m = parseRunMount(raw, (w) => expand(w, stageScope(st), line, st.escape), st.config.config.WorkingDir || '/', sshCount);
    } catch (e) {
      throw new PlanError(`--mount=${raw}: ${(e as Error).message}`, line, ctx.file);
    }
    if (m.type === 'ssh') sshCount++;
    // BUILDKIT_CACHE_MOUNT_NS namespaces cache ids, as in BuildKit.
    const ns = ctx.o.buildArgs.get('BUILDKIT_CACHE_MOUNT_NS');
    if (m.type === 'cache' && ns) m = { ...m, id: `${ns}/${m.id}` };
    if (m.type === 'bind' || (m.type === 'cache' && m.from !== undefined)) {
      inputs.push(m.from !== undefined ? await fromSource(ctx, st, m.from, line) : ctx.context);
      mounts.push({ ...m, input: inputs.length });
    } else mounts.push(m);
  }
  return { mounts, inputs };
}

export async function planRun(ctx: PlanContext, st: StageState, ins: Ins<'run'>): Promise<void> {
  const c = st.config.config;
  const line = ins.range.startLine;
  const { args, files } = runCommand(st, ins);
  const { mounts, inputs } = await runMounts(ctx, st, ins);
  // ARGs reach the process environment (ENV wins); proxy ARGs stay out of the history line.
  const env = new Map<string, string>();
  const argEnv: string[] = [];
  for (const [k, v] of st.args) {
    if (v === undefined || envToMap(c.Env).has(k)) continue;
    env.set(k, v);
    if (!PROXY_ARGS.includes(k)) argEnv.push(`${k}=${v}`);
  }
  const network: NetworkMode = ins.network === 'none' ? 'none' : ins.network === 'host' ? 'host' : ctx.o.network;
  const insecure = ins.security === 'insecure';
  if (insecure && !(ctx.o.allow ?? []).includes('security.insecure')) {
    throw new PlanError('RUN --security=insecure needs the security.insecure entitlement: build with --allow security.insecure', line, ctx.file);
  }
  const createdBy = `RUN ${argEnv.length ? `|${argEnv.length} ${argEnv.join(' ')} ` : ''}${args.join(' ')} # buildkit`;
  const procEnv = [...(c.Env ?? []), ...[...env].map(([k, v]) => `${k}=${v}`)];
  const { name, meta } = step(ctx, st, ins);
  st.vertex = vertex(
    {
      kind: 'exec', args, env: procEnv, cwd: c.WorkingDir || '/', user: c.User ?? '', network, hostname: 'tsbuild', history: take(st), createdBy, files, argNames: [...env.keys()], mounts, insecure,
      // Only when given, so that builds without them keep their cache keys.
      ...(ctx.o.extraHosts?.length ? { extraHosts: ctx.o.extraHosts } : {}),
      ...(ctx.o.ulimits?.length ? { ulimits: ctx.o.ulimits } : {}),
      ...(ctx.o.shmSize !== undefined ? { shmSize: ctx.o.shmSize } : {}),
      // Another platform's step runs under emulation, and is another step (BuildKit keys it by platform).
      ...(formatPlatform(st.platform) !== formatPlatform(hostPlatform()) ? { platform: formatPlatform(st.platform) } : {}),
    },
    [st.vertex, ...inputs],
    name,
    meta,
  );
}

/** ADD sources tsbuild cannot take, refused with what to do instead. */
function checkAddSources(ctx: PlanContext, ins: Ins<'add'>): void {
  const line = ins.range.startLine;
  for (const s of ins.sources) {
    if (s.startsWith('git@') || /^(git|ssh):\/\//i.test(s) || /^https?:\/\/.*\.git(#.*)?$/i.test(s)) {
      throw new PlanError(`ADD ${s}: git sources are not supported yet by tsbuild; clone in a RUN step instead`, line, ctx.file);
    }
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s) && !/^https?:\/\//i.test(s)) throw new PlanError(`ADD ${s}: only http and https URLs can be added`, line, ctx.file);
  }
  if (ins.checksum !== undefined && !ins.sources.some((s) => /^https?:\/\//i.test(s))) throw new PlanError('ADD --checksum needs a URL source', line, ctx.file);
}

export async function planCopy(ctx: PlanContext, st: StageState, ins: Ins<'copy' | 'add'>): Promise<void> {
  const c = st.config.config;
  const line = ins.range.startLine;
  let src: Vertex<OpSpec> = ctx.context;
  if (ins.kind === 'copy' && ins.from) {
    if (/\$/.test(ins.from)) throw new PlanError(`--from=${ins.from}: variables are not supported in --from; name the stage directly`, line, ctx.file);
    src = await fromSource(ctx, st, ins.from, line);
  }
  if (ins.kind === 'add') checkAddSources(ctx, ins);
  const scope = stageScope(st);
  const ex = (w: string) => expand(w, scope, line, st.escape);
  let dest = ex(ins.dest);
  const trailing = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
  if (!dest.startsWith('/')) dest = path.posix.join(c.WorkingDir || '/', dest);
  if (trailing && !dest.endsWith('/')) dest += '/';
  const { name, meta } = step(ctx, st, ins);
  st.vertex = vertex(
    {
      kind: 'copy',
      sources: ins.sources.map(ex),
      contents: ins.contents.map((h) => ({ path: h.path, data: h.expand ? expand(h.data, scope, line, st.escape, true) : h.data })),
      dest,
      chown: ins.chown !== undefined ? ex(ins.chown) : undefined,
      chmod: ins.chmod !== undefined ? ex(ins.chmod) : undefined,
      fromContext: src === ctx.context,
      excludes: ins.excludes,
      history: take(st),
      createdBy: `${ins.kind.toUpperCase()} ${[...ins.sources, ...ins.contents.map((h) => h.path)].join(' ')} ${ins.dest} # buildkit`,
      verb: ins.kind === 'copy' ? 'COPY' : 'ADD',
      parents: ins.parents,
      link: ins.link,
      ...(ins.kind === 'add' ? { unpack: ins.unpack, checksum: ins.checksum !== undefined ? ex(ins.checksum) : undefined } : {}),
    },
    [st.vertex, src],
    name,
    meta,
  );
}

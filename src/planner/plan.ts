/**
 * The planner turns a parsed Dockerfile into a build graph: only the stages the target needs, each
 * instruction either a vertex (RUN, COPY, ADD, WORKDIR) or a change to the stage's image config, with
 * ARG/ENV scoping and expansion as BuildKit does it. Its only I/O is the injected `resolveImage`.
 */
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { vertex, type Vertex } from '../builder/index.js';
import type { ContainerConfig, History, ImageConfig } from '../image/index.js';
import type { OpSpec, NetworkMode } from '../ops/index.js';
import {
  processWord, processWords, instructionFromNode, parseAST, chompHeredocContent, DockerfileSyntaxError,
  type Dockerfile, type Instruction, type Stage,
} from '../parser/index.js';
import { parseRunMount, type RunMount } from './mounts.js';
import { DEFAULT_PATH, envToMap, parseDuration, setEnv, signalNumber } from './config.js';

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
  network: NetworkMode;
  /** Entitlements granted with --allow (security.insecure). */
  allow?: string[];
  resolveImage: (name: string) => Promise<ResolvedBase>;
}

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

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
export function hostPlatform(): { os: string; architecture: string; variant?: string } {
  return { os: 'linux', architecture: ARCH[process.arch] ?? process.arch, ...(process.arch === 'arm' ? { variant: 'v7' } : {}) };
}

function platformArgs(): Map<string, string> {
  const p = hostPlatform();
  const plat = `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
  return new Map([
    ['TARGETPLATFORM', plat], ['TARGETOS', p.os], ['TARGETARCH', p.architecture], ['TARGETVARIANT', p.variant ?? ''],
    ['BUILDPLATFORM', plat], ['BUILDOS', p.os], ['BUILDARCH', p.architecture], ['BUILDVARIANT', p.variant ?? ''],
  ]);
}

const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

interface StageResult {
  vertex: Vertex<OpSpec>;
  config: ImageConfig;
  pending: History[];
}

interface StageState {
  stage: Stage;
  vertex: Vertex<OpSpec>;
  config: ImageConfig;
  pending: History[];
  /** ARGs declared in this stage, with their values (undefined = declared without a value). */
  args: Map<string, string | undefined>;
  cmdSet: boolean;
  step: number;
  steps: number;
}

export async function planBuild(o: PlanOptions): Promise<BuildGraph> {
  const df = o.dockerfile;
  const file = o.dockerfileName ?? 'Dockerfile';
  const warnings: PlanWarning[] = df.warnings.map((w) => ({ message: w.short, line: w.line }));
  const used = new Set<string>();
  const auto = platformArgs();

  // Global scope: ARGs before the first FROM, usable in FROM lines.
  const globals = new Map<string, string | undefined>();
  for (const a of df.globalArgs) {
    for (const { key, value } of a.args) {
      let v = o.buildArgs.get(key);
      if (v !== undefined) used.add(key);
      else if (value !== undefined) v = expand(value, mapOf(globals, auto), a.range.startLine);
      globals.set(key, v);
    }
  }
  const globalEnv = mapOf(globals, auto);

  const stageByName = new Map<string, Stage>();
  for (const s of df.stages) if (s.name) stageByName.set(s.name, s);
  const target = o.target ? stageByName.get(o.target.toLowerCase()) : df.stages[df.stages.length - 1];
  if (!target) {
    const names = df.stages.map((s) => s.name).filter(Boolean);
    throw new PlanError(`target stage "${o.target}" could not be found${names.length ? ` (stages: ${names.join(', ')})` : ' (no stage has a name: add "AS <name>" to a FROM line)'}`);
  }

  function fromName(s: Stage): string {
    const name = expand(s.from.image, globalEnv, s.from.range.startLine);
    if (name.trim() === '') throw new PlanError(`base name (${s.from.image}) should not be blank`, s.from.range.startLine, file);
    return name;
  }
  function stageRef(ref: string, before: number, line: number): Stage | undefined {
    const byName = stageByName.get(ref.toLowerCase());
    if (byName) {
      if (byName.index >= before) throw new PlanError(`stage "${ref}" is used before it is defined: a stage can only use stages above it`, line, file);
      return byName;
    }
    if (/^\d+$/.test(ref)) {
      const i = parseInt(ref, 10);
      if (i >= before) throw new PlanError(`stage index ${i} is not defined before this stage`, line, file);
      return df.stages[i];
    }
    return undefined;
  }

  // Only the stages the target depends on are planned (a broken unused stage cannot fail the build).
  const needed = new Set<number>();
  const visit = (s: Stage) => {
    if (needed.has(s.index)) return;
    needed.add(s.index);
    const base = stageRef(fromName(s), s.index, s.from.range.startLine);
    if (base) visit(base);
    for (const i of s.instructions) {
      if (i.kind === 'copy' && i.from) {
        const dep = stageRef(i.from, s.index, i.range.startLine);
        if (dep) visit(dep);
      }
      if (i.kind === 'run') {
        for (const m of i.mounts) {
          const from = /(?:^|,)\s*from=([^,]+)/i.exec(m)?.[1];
          const dep = from ? stageRef(from.replace(/^"|"$/g, ''), s.index, i.range.startLine) : undefined;
          if (dep) visit(dep);
        }
      }
    }
  };
  visit(target);

  const results = new Map<number, StageResult>();
  const images = new Map<string, ResolvedBase>();
  const resolve = async (name: string, line: number): Promise<ResolvedBase> => {
    let r = images.get(name);
    if (!r) {
      try {
        r = await o.resolveImage(name);
      } catch (e) {
        if (e instanceof TsbuildError) throw new PlanError(`FROM ${name}: ${e.message}`, line, file);
        throw e;
      }
      images.set(name, r);
    }
    return r;
  };
  const context: Vertex<OpSpec> = vertex({ kind: 'context', dir: path.resolve(o.contextDir), ignore: o.ignore }, [], 'load build context');
  const stagesBuilt: string[] = [];
  // Identifies "the same step" across builds, for explaining cache misses.
  const stepScope = `${path.resolve(o.contextDir)}#${o.dockerfileName ?? 'Dockerfile'}`;

  // Stages are planned on first use (memoized): the ones the target needs, in order, plus any that
  // only an ONBUILD trigger of a base names (`ONBUILD COPY --from=x`), found while planning.
  const planning = new Map<number, Promise<StageResult>>();
  const planStage = (s: Stage): Promise<StageResult> => {
    let p = planning.get(s.index);
    if (!p) {
      p = planStageNow(s);
      planning.set(s.index, p);
    }
    return p;
  };
  for (const s of df.stages) if (needed.has(s.index)) await planStage(s);

  async function planStageNow(s: Stage): Promise<StageResult> {
    const label = s.name ?? `stage-${s.index}`;
    stagesBuilt.push(label);
    const baseName = fromName(s);
    if (s.from.platform !== undefined) {
      const want = expand(s.from.platform, globalEnv, s.from.range.startLine);
      const host = auto.get('TARGETPLATFORM')!;
      if (want.trim() === '') throw new PlanError(`FROM --platform=${s.from.platform}: the platform is empty after expansion`, s.from.range.startLine, file);
      const norm = (p: string) => p.toLowerCase().replace(/^linux\/x86_64/, 'linux/amd64').replace(/^linux\/aarch64/, 'linux/arm64');
      if (norm(want) !== host && !host.startsWith(norm(want) + '/')) {
        throw new PlanError(`FROM --platform=${want}: tsbuild builds only for this machine's platform (${host}); emulation of other platforms is not supported`, s.from.range.startLine, file);
      }
    }
    const baseStage = stageRef(baseName, s.index, s.from.range.startLine);
    let st: StageState;
    const steps = s.instructions.length + 1;
    if (baseStage) {
      const b = await planStage(baseStage);
      st = { stage: s, vertex: b.vertex, config: JSON.parse(JSON.stringify(b.config)) as ImageConfig, pending: [...b.pending], args: new Map(), cmdSet: false, step: 1, steps };
    } else if (baseName.toLowerCase() === 'scratch') {
      const p = hostPlatform();
      st = {
        stage: s,
        vertex: vertex({ kind: 'scratch' }, [], `[${label} 1/${steps}] FROM scratch`, { stage: label, line: s.from.range.startLine }),
        config: { architecture: p.architecture, os: p.os, config: { Env: [`PATH=${DEFAULT_PATH}`] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
        pending: [],
        args: new Map(),
        cmdSet: false,
        step: 1,
        steps,
      };
    } else {
      const img = await resolve(baseName, s.from.range.startLine);
      const cfg = JSON.parse(JSON.stringify(img.config)) as ImageConfig;
      cfg.config ??= {};
      if (!envToMap(cfg.config.Env).has('PATH')) cfg.config.Env = setEnv(cfg.config.Env ?? [], 'PATH', DEFAULT_PATH);
      st = {
        stage: s,
        vertex: vertex({ kind: 'image', name: img.name, manifestDigest: img.manifestDigest }, [], `[${label} 1/${steps}] FROM ${img.name}`, {
          stage: label,
          line: s.from.range.startLine,
        }),
        config: cfg,
        pending: [],
        args: new Map(),
        cmdSet: false,
        step: 1,
        steps,
      };
    }
    st.config.history = [];
    // ONBUILD triggers of the base run first, then are cleared.
    const triggers = st.config.config.OnBuild ?? [];
    st.config.config.OnBuild = null;
    const instrs: Instruction[] = [];
    for (const t of triggers) {
      const r = parseAST(t);
      for (const n of r.ast.children) {
        n.startLine = s.from.range.startLine;
        n.endLine = s.from.range.endLine;
        instrs.push(instructionFromNode(n));
      }
    }
    instrs.push(...s.instructions);
    st.steps = instrs.length + 1;
    for (const ins of instrs) {
      st.step++;
      await applyInstruction(st, ins);
    }
    const res = { vertex: st.vertex, config: st.config, pending: st.pending };
    results.set(s.index, res);
    return res;
  }

  async function applyInstruction(st: StageState, ins: Instruction): Promise<void> {
    const line = ins.range.startLine;
    const label = st.stage.name ?? `stage-${st.stage.index}`;
    const c = st.config.config;
    const name = `[${label} ${st.step}/${st.steps}] ${ins.original.split('\n')[0]}`;
    const meta = { stage: label, line, text: ins.original.split('\n')[0], stepId: `${stepScope}#${label}#${st.step}` };
    const scope = () => {
      const m = new Map<string, string>();
      for (const [k, v] of st.args) if (v !== undefined) m.set(k, v);
      for (const [k, v] of envToMap(c.Env)) m.set(k, v);
      return m;
    };
    const ex = (w: string) => expand(w, scope(), line);
    const record = (createdBy: string) => st.pending.push({ created_by: createdBy, comment: 'buildkit.dockerfile.v0', empty_layer: true });
    const take = () => {
      const h = st.pending;
      st.pending = [];
      return h.map((x) => ({ ...x }));
    };
    switch (ins.kind) {
      case 'arg': {
        for (const { key, value } of ins.args) {
          let v: string | undefined;
          if (o.buildArgs.has(key)) {
            v = o.buildArgs.get(key);
            used.add(key);
          } else if (value !== undefined) v = ex(value);
          else if (globals.has(key)) v = globals.get(key);
          else if (auto.has(key)) v = auto.get(key);
          else if (key === 'TARGETSTAGE') v = o.target ?? target!.name ?? '';
          st.args.set(key, v);
        }
        record(`ARG ${ins.args.map((a) => (a.value !== undefined ? `${a.key}=${a.value}` : a.key)).join(' ')}`);
        return;
      }
      case 'env': {
        const env = scope();
        let list = c.Env ?? [];
        for (const p of ins.pairs) {
          const k = expand(p.key, env, line);
          const v = expand(p.value, env, line);
          list = setEnv(list, k, v);
        }
        c.Env = list;
        record(`ENV ${ins.pairs.map((p) => `${expand(p.key, env, line)}=${expand(p.value, env, line)}`).join(' ')}`);
        return;
      }
      case 'label': {
        const env = scope();
        c.Labels ??= {};
        for (const p of ins.pairs) c.Labels[expand(p.key, env, line)] = expand(p.value, env, line);
        record(`LABEL ${ins.pairs.map((p) => `${expand(p.key, env, line)}=${expand(p.value, env, line)}`).join(' ')}`);
        return;
      }
      case 'maintainer':
        st.config.author = ins.value;
        record(`MAINTAINER ${ins.value}`);
        return;
      case 'workdir': {
        const p = ex(ins.value);
        const wd = path.posix.resolve(c.WorkingDir || '/', p);
        c.WorkingDir = wd;
        st.vertex = vertex(
          { kind: 'mkdir', path: wd, user: c.User ?? '', history: take(), createdBy: `WORKDIR ${wd}` },
          [st.vertex],
          name,
          meta,
        );
        return;
      }
      case 'user':
        c.User = ex(ins.value);
        record(`USER ${c.User}`);
        return;
      case 'cmd':
      case 'entrypoint': {
        const shell = c.Shell ?? ['/bin/sh', '-c'];
        const cmd = ins.prependShell ? (ins.cmd.length ? [...shell, ins.cmd.join(' ')] : []) : ins.cmd;
        if (ins.kind === 'cmd') {
          c.Cmd = cmd;
          c.ArgsEscaped = true;
          st.cmdSet = true;
          record(`CMD ${JSON.stringify(cmd)}`);
        } else {
          c.Entrypoint = cmd;
          if (!st.cmdSet) c.Cmd = null;
          record(`ENTRYPOINT ${JSON.stringify(cmd)}`);
        }
        return;
      }
      case 'shell':
        c.Shell = ins.shell;
        record(`SHELL ${JSON.stringify(ins.shell)}`);
        return;
      case 'expose': {
        c.ExposedPorts ??= {};
        const env = scope();
        for (const w of ins.ports.flatMap((p) => processWords(p, env))) {
          const m = /^(\d+)(?:-(\d+))?(?:\/(\w+))?$/.exec(w);
          if (!m) throw new PlanError(`invalid containerPort: ${w}`, line, file);
          const lo = parseInt(m[1]!, 10);
          const hi = m[2] ? parseInt(m[2], 10) : lo;
          const proto = (m[3] ?? 'tcp').toLowerCase();
          if (hi > 65535 || lo > hi) throw new PlanError(`invalid port range ${w}: ports must be 0-65535`, line, file);
          for (let p = lo; p <= hi; p++) c.ExposedPorts[`${p}/${proto}`] = {};
        }
        record(`EXPOSE ${Object.keys(c.ExposedPorts).join(' ')}`);
        return;
      }
      case 'volume': {
        c.Volumes ??= {};
        for (const v of ins.volumes) {
          const e = ex(v);
          if (e.trim() === '') throw new PlanError('VOLUME specified can not be an empty string', line, file);
          c.Volumes[e] = {};
        }
        record(`VOLUME ${JSON.stringify(ins.volumes.map(ex))}`);
        return;
      }
      case 'stopsignal': {
        const sig = ex(ins.value);
        try {
          signalNumber(sig);
        } catch (e) {
          throw new PlanError((e as Error).message, line, file);
        }
        c.StopSignal = sig;
        record(`STOPSIGNAL ${sig}`);
        return;
      }
      case 'healthcheck': {
        if (ins.type === 'NONE') c.Healthcheck = { Test: ['NONE'] };
        else if (ins.type !== 'CMD') throw new PlanError(`Unknown type "${ins.type}" in HEALTHCHECK (try CMD)`, line, file);
        else {
          if (!ins.test || ins.test.length === 0) throw new PlanError('Missing command after HEALTHCHECK CMD', line, file);
          const test = ins.prependShell ? ['CMD-SHELL', ins.test.join(' ')] : ['CMD', ...ins.test];
          const hc: NonNullable<ContainerConfig['Healthcheck']> = { Test: test };
          const dur = (v: string | undefined, flag: string) => {
            if (v === undefined) return undefined;
            let n: number;
            try {
              n = parseDuration(v);
            } catch (e) {
              throw new PlanError(`--${flag}: ${(e as Error).message}`, line, file);
            }
            if (n !== 0 && n < 1e6) throw new PlanError(`Interval "${flag}" cannot be less than 1ms`, line, file);
            return n;
          };
          const iv = dur(ins.interval, 'interval');
          const to = dur(ins.timeout, 'timeout');
          const sp = dur(ins.startPeriod, 'start-period');
          const si = dur(ins.startInterval, 'start-interval');
          if (iv !== undefined) hc.Interval = iv;
          if (to !== undefined) hc.Timeout = to;
          if (sp !== undefined) hc.StartPeriod = sp;
          if (si !== undefined) hc.StartInterval = si;
          if (ins.retries !== undefined) {
            if (!/^-?\d+$/.test(ins.retries)) throw new PlanError(`--retries: invalid integer ${ins.retries}`, line, file);
            const r = parseInt(ins.retries, 10);
            if (r < 0) throw new PlanError('--retries cannot be negative', line, file);
            hc.Retries = r;
          }
          c.Healthcheck = hc;
        }
        record(`HEALTHCHECK ${JSON.stringify(c.Healthcheck)}`);
        return;
      }
      case 'onbuild':
        c.OnBuild = [...(c.OnBuild ?? []), ins.expression];
        record(`ONBUILD ${ins.expression}`);
        return;
      case 'run': {
        const shell = c.Shell ?? ['/bin/sh', '-c'];
        let args: string[];
        const files: { path: string; data: string; mode: number }[] = [];
        if (!ins.prependShell) args = ins.cmd;
        else {
          let script = ins.cmd.join(' ');
          if (ins.files.length > 0) {
            const only = ins.files.length === 1 && /^\s*\d*<<-?\s*\S+\s*$/.test(script);
            if (only) {
              const f = ins.files[0]!;
              script = f.chomp ? chompHeredocContent(f.data) : f.data;
              if (script.startsWith('#!')) {
                // A shebang body is written as an executable under /dev/pipes and run directly (BuildKit).
                files.push({ path: `/dev/pipes/${f.name}`, data: script, mode: 0o755 });
              }
            } else {
              script += '\n' + ins.files.map((f) => f.data + f.name + '\n').join('');
            }
          }
          args = files.length ? [files[0]!.path] : [...shell, script];
        }
        const mountInputs: Vertex<OpSpec>[] = [];
        const mounts: (RunMount & { input?: number })[] = [];
        let sshCount = 0;
        for (const raw of ins.mounts) {
          let m: RunMount;
          try {
            m = parseRunMount(raw, (w) => ex(w), c.WorkingDir || '/', sshCount);
          } catch (e) {
            throw new PlanError(`--mount=${raw}: ${(e as Error).message}`, line, file);
          }
          if (m.type === 'ssh') sshCount++;
          // BUILDKIT_CACHE_MOUNT_NS namespaces cache ids, as in BuildKit.
          const ns = o.buildArgs.get('BUILDKIT_CACHE_MOUNT_NS');
          if (m.type === 'cache' && ns) m = { ...m, id: `${ns}/${m.id}` };
          if (m.type === 'bind' || (m.type === 'cache' && m.from !== undefined)) {
            let src: Vertex<OpSpec> = context;
            if (m.from !== undefined) {
              const dep = stageRef(m.from, st.stage.index, line);
              if (dep) src = (await planStage(dep)).vertex;
              else {
                const img = await resolve(m.from, line);
                src = vertex({ kind: 'image', name: img.name, manifestDigest: img.manifestDigest }, [], `[${label}] load ${img.name}`);
              }
            }
            mountInputs.push(src);
            mounts.push({ ...m, input: mountInputs.length });
          } else mounts.push(m);
        }
        const env = new Map<string, string>();
        const argEnv: string[] = [];
        for (const [k, v] of st.args) if (v !== undefined && !envToMap(c.Env).has(k)) {
          env.set(k, v);
          if (!PROXY_ARGS.includes(k)) argEnv.push(`${k}=${v}`);
        }
        const procEnv = [...(c.Env ?? []), ...[...env].map(([k, v]) => `${k}=${v}`)];
        const network: NetworkMode = ins.network === 'none' ? 'none' : ins.network === 'host' ? 'host' : o.network;
        const insecure = ins.security === 'insecure';
        if (insecure && !(o.allow ?? []).includes('security.insecure')) {
          throw new PlanError('RUN --security=insecure needs the security.insecure entitlement: build with --allow security.insecure', line, file);
        }
        const createdBy = `RUN ${argEnv.length ? `|${argEnv.length} ${argEnv.join(' ')} ` : ''}${args.join(' ')} # buildkit`;
        st.vertex = vertex(
          { kind: 'exec', args, env: procEnv, cwd: c.WorkingDir || '/', user: c.User ?? '', network, hostname: 'tsbuild', history: take(), createdBy, files, argNames: [...env.keys()], mounts, insecure },
          [st.vertex, ...mountInputs],
          name,
          meta,
        );
        return;
      }
      case 'copy':
      case 'add': {
        let src: Vertex<OpSpec> = context;
        let fromContext = true;
        if (ins.kind === 'copy' && ins.from) {
          if (/\$/.test(ins.from)) throw new PlanError(`--from=${ins.from}: variables are not supported in --from; name the stage directly`, line, file);
          const dep = stageRef(ins.from, st.stage.index, line);
          fromContext = false;
          if (dep) src = (await planStage(dep)).vertex;
          else {
            const img = await resolve(ins.from, line);
            src = vertex({ kind: 'image', name: img.name, manifestDigest: img.manifestDigest }, [], `[${label}] load ${img.name}`);
          }
        }
        if (ins.kind === 'add') {
          for (const s of ins.sources) {
            if (s.startsWith('git@') || /^(git|ssh):\/\//i.test(s) || /^https?:\/\/.*\.git(#.*)?$/i.test(s)) {
              throw new PlanError(`ADD ${s}: git sources are not supported yet by tsbuild; clone in a RUN step instead`, line, file);
            }
            if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s) && !/^https?:\/\//i.test(s)) {
              throw new PlanError(`ADD ${s}: only http and https URLs can be added`, line, file);
            }
          }
          if (ins.checksum !== undefined && !ins.sources.some((s) => /^https?:\/\//i.test(s))) {
            throw new PlanError('ADD --checksum needs a URL source', line, file);
          }
        }
        const env = scope();
        const sources = ins.sources.map((s) => expand(s, env, line));
        let dest = expand(ins.dest, env, line);
        const trailing = dest.endsWith('/') || dest === '.' || dest.endsWith('/.');
        if (!dest.startsWith('/')) dest = path.posix.join(c.WorkingDir || '/', dest);
        if (trailing && !dest.endsWith('/')) dest += '/';
        const contents = ins.contents.map((h) => ({ path: h.path, data: h.expand ? expand(h.data, env, line, true) : h.data }));
        st.vertex = vertex(
          {
            kind: 'copy',
            sources,
            contents,
            dest,
            chown: ins.chown !== undefined ? ex(ins.chown) : undefined,
            chmod: ins.chmod !== undefined ? ex(ins.chmod) : undefined,
            fromContext,
            excludes: ins.excludes,
            history: take(),
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
        return;
      }
      case 'from':
        return;
    }
  }

  const unused = [...o.buildArgs.keys()].filter((k) => !used.has(k) && !PROXY_ARGS.includes(k) && !k.startsWith('BUILDKIT_') && !k.startsWith('SOURCE_DATE_EPOCH'));
  if (unused.length) warnings.push({ message: `One or more build-args [${unused.join(' ')}] were not consumed` });

  const fin = results.get(target.index)!;
  const cfg = fin.config;
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
  return { root, targetStage: target.name ?? `stage-${target.index}`, stagesBuilt, warnings };
}

function mapOf(...maps: Map<string, string | undefined>[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const x of maps) for (const [k, v] of x) if (v !== undefined && !m.has(k)) m.set(k, v);
  return m;
}

/** Expands a word; heredoc bodies keep their quotes (`rawQuotes`). Errors carry the Dockerfile line. */
function expand(word: string, env: Map<string, string>, line: number, heredoc = false): string {
  try {
    return processWord(word, env, heredoc ? { rawQuotes: true } : {}).result;
  } catch (e) {
    throw new DockerfileSyntaxError((e as Error).message, line);
  }
}


/**
 * Instructions that change only the stage's image config (and its history): ARG, ENV, LABEL,
 * MAINTAINER, USER, CMD, ENTRYPOINT, SHELL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, ONBUILD. Each
 * records a history entry that the next layer-making step (or the export) takes along.
 */
import type { ContainerConfig } from '../image/index.js';
import { processWords, type Instruction } from '../parser/index.js';
import { parseDuration, setEnv, signalNumber } from './config.js';
import { expand, stageScope } from './scope.js';
import { PlanError, type PlanContext, type StageState } from './types.js';

/** The instruction of kind K (some parser shapes serve two kinds, e.g. ENV and LABEL). */
type OfKind<I, K> = I extends { kind: infer IK } ? (K extends IK ? I : never) : never;
export type Ins<K extends Instruction['kind']> = OfKind<Instruction, K>;

/** A config-only instruction's history entry, attached to the next layer (as BuildKit does). */
export function record(st: StageState, createdBy: string): void {
  st.pending.push({ created_by: createdBy, comment: 'buildkit.dockerfile.v0', empty_layer: true });
}

const ex = (st: StageState, w: string, line: number) => expand(w, stageScope(st), line, st.escape);

export function planArg(ctx: PlanContext, st: StageState, ins: Ins<'arg'>): void {
  for (const { key, value } of ins.args) {
    let v: string | undefined;
    if (ctx.o.buildArgs.has(key)) {
      v = ctx.o.buildArgs.get(key);
      ctx.used.add(key);
    } else if (value !== undefined) v = ex(st, value, ins.range.startLine);
    else if (ctx.globals.has(key)) v = ctx.globals.get(key);
    else if (ctx.auto.has(key)) v = ctx.auto.get(key);
    else if (key === 'TARGETSTAGE') v = ctx.o.target ?? ctx.target.name ?? '';
    st.args.set(key, v);
  }
  record(st, `ARG ${ins.args.map((a) => (a.value !== undefined ? `${a.key}=${a.value}` : a.key)).join(' ')}`);
}

/** ENV and LABEL: key=value pairs, all expanded in the scope from before the instruction. */
export function planEnv(_ctx: PlanContext, st: StageState, ins: Ins<'env'> | Ins<'label'>): void {
  const scope = stageScope(st);
  const line = ins.range.startLine;
  const pairs = ins.pairs.map((p) => [expand(p.key, scope, line, st.escape), expand(p.value, scope, line, st.escape)] as const);
  const c = st.config.config;
  if (ins.kind === 'env') for (const [k, v] of pairs) c.Env = setEnv(c.Env ?? [], k, v);
  else {
    c.Labels ??= {};
    for (const [k, v] of pairs) c.Labels[k] = v;
  }
  record(st, `${ins.kind.toUpperCase()} ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
}

export function planMaintainer(_ctx: PlanContext, st: StageState, ins: Ins<'maintainer'>): void {
  st.config.author = ins.value;
  record(st, `MAINTAINER ${ins.value}`);
}

export function planUser(_ctx: PlanContext, st: StageState, ins: Ins<'user'>): void {
  st.config.config.User = ex(st, ins.value, ins.range.startLine);
  record(st, `USER ${st.config.config.User}`);
}

/** CMD and ENTRYPOINT; an ENTRYPOINT resets a CMD inherited from the base (not one set in this stage). */
export function planCmd(_ctx: PlanContext, st: StageState, ins: Ins<'cmd'> | Ins<'entrypoint'>): void {
  const c = st.config.config;
  const shell = c.Shell ?? ['/bin/sh', '-c'];
  const cmd = ins.prependShell ? (ins.cmd.length ? [...shell, ins.cmd.join(' ')] : []) : ins.cmd;
  if (ins.kind === 'cmd') {
    c.Cmd = cmd;
    c.ArgsEscaped = true;
    st.cmdSet = true;
    record(st, `CMD ${JSON.stringify(cmd)}`);
  } else {
    c.Entrypoint = cmd;
    if (!st.cmdSet) c.Cmd = null;
    record(st, `ENTRYPOINT ${JSON.stringify(cmd)}`);
  }
}

export function planShell(_ctx: PlanContext, st: StageState, ins: Ins<'shell'>): void {
  st.config.config.Shell = ins.shell;
  record(st, `SHELL ${JSON.stringify(ins.shell)}`);
}

export function planExpose(ctx: PlanContext, st: StageState, ins: Ins<'expose'>): void {
  const c = st.config.config;
  c.ExposedPorts ??= {};
  const line = ins.range.startLine;
  for (const w of ins.ports.flatMap((p) => processWords(p, stageScope(st)))) {
    const m = /^(\d+)(?:-(\d+))?(?:\/(\w+))?$/.exec(w);
    if (!m) throw new PlanError(`invalid containerPort: ${w}`, line, ctx.file);
    const lo = parseInt(m[1]!, 10);
    const hi = m[2] ? parseInt(m[2], 10) : lo;
    const proto = (m[3] ?? 'tcp').toLowerCase();
    if (hi > 65535 || lo > hi) throw new PlanError(`invalid port range ${w}: ports must be 0-65535`, line, ctx.file);
    for (let p = lo; p <= hi; p++) c.ExposedPorts[`${p}/${proto}`] = {};
  }
  record(st, `EXPOSE ${Object.keys(c.ExposedPorts).join(' ')}`);
}

export function planVolume(ctx: PlanContext, st: StageState, ins: Ins<'volume'>): void {
  const c = st.config.config;
  c.Volumes ??= {};
  const vols = ins.volumes.map((v) => ex(st, v, ins.range.startLine));
  for (const e of vols) {
    if (e.trim() === '') throw new PlanError('VOLUME specified can not be an empty string', ins.range.startLine, ctx.file);
    c.Volumes[e] = {};
  }
  record(st, `VOLUME ${JSON.stringify(vols)}`);
}

export function planStopSignal(ctx: PlanContext, st: StageState, ins: Ins<'stopsignal'>): void {
  const sig = ex(st, ins.value, ins.range.startLine);
  try {
    signalNumber(sig);
  } catch (e) {
    throw new PlanError((e as Error).message, ins.range.startLine, ctx.file);
  }
  st.config.config.StopSignal = sig;
  record(st, `STOPSIGNAL ${sig}`);
}

export function planHealthcheck(ctx: PlanContext, st: StageState, ins: Ins<'healthcheck'>): void {
  const c = st.config.config;
  const fail = (message: string) => new PlanError(message, ins.range.startLine, ctx.file);
  if (ins.type === 'NONE') c.Healthcheck = { Test: ['NONE'] };
  else if (ins.type !== 'CMD') throw fail(`Unknown type "${ins.type}" in HEALTHCHECK (try CMD)`);
  else {
    if (!ins.test || ins.test.length === 0) throw fail('Missing command after HEALTHCHECK CMD');
    const hc: NonNullable<ContainerConfig['Healthcheck']> = { Test: ins.prependShell ? ['CMD-SHELL', ins.test.join(' ')] : ['CMD', ...ins.test] };
    const dur = (v: string | undefined, flag: string) => {
      if (v === undefined) return undefined;
      let n: number;
      try {
        n = parseDuration(v);
      } catch (e) {
        throw fail(`--${flag}: ${(e as Error).message}`);
      }
      if (n !== 0 && n < 1e6) throw fail(`Interval "${flag}" cannot be less than 1ms`);
      return n;
    };
    const durations = { Interval: dur(ins.interval, 'interval'), Timeout: dur(ins.timeout, 'timeout'), StartPeriod: dur(ins.startPeriod, 'start-period'), StartInterval: dur(ins.startInterval, 'start-interval') };
    for (const [k, v] of Object.entries(durations)) if (v !== undefined) hc[k as keyof typeof durations] = v;
    if (ins.retries !== undefined) {
      if (!/^-?\d+$/.test(ins.retries)) throw fail(`--retries: invalid integer ${ins.retries}`);
      const r = parseInt(ins.retries, 10);
      if (r < 0) throw fail('--retries cannot be negative');
      hc.Retries = r;
    }
    c.Healthcheck = hc;
  }
  record(st, `HEALTHCHECK ${JSON.stringify(c.Healthcheck)}`);
}

export function planOnbuild(_ctx: PlanContext, st: StageState, ins: Ins<'onbuild'>): void {
  const c = st.config.config;
  c.OnBuild = [...(c.OnBuild ?? []), ins.expression];
  record(st, `ONBUILD ${ins.expression}`);
}

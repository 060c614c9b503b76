/**
 * Typed instructions on top of the raw AST, following BuildKit's instructions package: per-instruction
 * flags, argument counts, heredoc sources, and the stage structure (global ARGs, then FROM-led stages).
 * No expansion happens here: values are kept as written, for the planner to expand with the ARG/ENV
 * values in scope.
 */
import { DockerfileSyntaxError } from '../errors/index.js';
import { parseAST, chompHeredocContent, parseHeredocWord, type Node, type Heredoc, type Warning } from './ast.js';
import type { Directive } from './directives.js';
import { parseFlags, suggest, type FlagKind } from './flags.js';

export interface Range {
  startLine: number;
  endLine: number;
}

interface Base {
  range: Range;
  /** The instruction as written (logical line), for progress output and history. */
  original: string;
  keyword: string;
}

export interface KeyValue {
  key: string;
  value: string;
  /** The legacy `KEY value` form (no `=`). */
  legacy: boolean;
}

export interface SourceContent {
  path: string;
  data: string;
  expand: boolean;
}

export interface RunFile {
  name: string;
  data: string;
  chomp: boolean;
  expand: boolean;
  fileDescriptor: number;
}

export type Instruction =
  | (Base & { kind: 'from'; image: string; stageName?: string; platform?: string })
  | (Base & { kind: 'run'; cmd: string[]; prependShell: boolean; files: RunFile[]; mounts: string[]; network?: string; security?: string })
  | (Base & { kind: 'cmd' | 'entrypoint'; cmd: string[]; prependShell: boolean })
  | (Base & { kind: 'shell'; shell: string[] })
  | (Base & {
      kind: 'copy' | 'add';
      sources: string[];
      contents: SourceContent[];
      dest: string;
      json: boolean;
      from?: string;
      chown?: string;
      chmod?: string;
      link: boolean;
      parents: boolean;
      excludes: string[];
      keepGitDir?: boolean;
      checksum?: string;
      unpack?: boolean;
    })
  | (Base & { kind: 'env' | 'label'; pairs: KeyValue[] })
  | (Base & { kind: 'arg'; args: { key: string; value?: string }[] })
  | (Base & { kind: 'workdir' | 'user' | 'stopsignal' | 'maintainer'; value: string })
  | (Base & { kind: 'expose'; ports: string[] })
  | (Base & { kind: 'volume'; volumes: string[] })
  | (Base & {
      kind: 'healthcheck';
      test: string[] | null;
      type: string;
      prependShell: boolean;
      interval?: string;
      timeout?: string;
      startPeriod?: string;
      startInterval?: string;
      retries?: string;
    })
  | (Base & { kind: 'onbuild'; expression: string });

export type InstructionKind = Instruction['kind'];

export interface Stage {
  name?: string;
  /** The FROM instruction that starts the stage. */
  from: Extract<Instruction, { kind: 'from' }>;
  instructions: Instruction[];
  index: number;
}

export interface Dockerfile {
  directives: Directive[];
  escapeToken: string;
  globalArgs: Extract<Instruction, { kind: 'arg' }>[];
  stages: Stage[];
  warnings: Warning[];
  ast: Node;
}

const FLAGS: Record<string, Record<string, FlagKind>> = {
  from: { platform: 'string' },
  run: { mount: 'strings', network: 'string', security: 'string', device: 'strings' },
  copy: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  add: { chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string', unpack: 'bool', exclude: 'strings' },
  healthcheck: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

const KNOWN = [
  'add', 'arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'from', 'healthcheck', 'label', 'maintainer',
  'onbuild', 'run', 'shell', 'stopsignal', 'user', 'volume', 'workdir',
];

function args(n: Node): string[] {
  const out: string[] = [];
  for (let x = n.next; x; x = x.next) out.push(x.value);
  return out;
}

const validStageName = /^[a-z][a-z0-9-_.]*$/;

function heredocsToFiles(docs: Heredoc[]): RunFile[] {
  return docs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp, expand: h.expand, fileDescriptor: h.fileDescriptor }));
}

/** Builds one typed instruction from an AST node. Throws Error with BuildKit's wording. */
export function instructionFromNode(n: Node): Instruction {
  const keyword = n.value.toLowerCase();
  const base = { range: { startLine: n.startLine, endLine: n.endLine }, original: n.original.trim(), keyword: n.value };
  if (!KNOWN.includes(keyword)) {
    const s = suggest(keyword, KNOWN);
    throw new Error(`unknown instruction: ${n.value}${s ? ` (did you mean ${s}?)` : ''}`);
  }
  const f = parseFlags(n.flags, FLAGS[keyword] ?? {});
  const a = args(n);
  switch (keyword) {
    case 'from': {
      if (a.length !== 1 && a.length !== 3) throw new Error('FROM requires either one or three arguments');
      let stageName: string | undefined;
      if (a.length === 3) {
        if (a[1]!.toLowerCase() !== 'as') throw new Error('when using FROM with 3 arguments, the second argument must be "AS"');
        stageName = a[2]!.toLowerCase();
        if (!validStageName.test(stageName)) throw new Error(`invalid name for build stage: "${a[2]}", name can't start with a number or contain symbols`);
      }
      return { ...base, kind: 'from', image: a[0]!, stageName, platform: f.strings.get('platform') };
    }
    case 'run': {
      if (f.lists.get('device')) throw new Error('device feature is only supported in Dockerfile frontend 1.14.0-labs or later');
      if (a.length === 0 && n.heredocs.length === 0) throw new Error('RUN requires at least one argument');
      const files = n.json ? [] : heredocsToFiles(n.heredocs);
      const network = f.strings.get('network');
      if (network !== undefined && !['default', 'none', 'host'].includes(network)) throw new Error(`invalid network mode "${network}"`);
      const security = f.strings.get('security');
      if (security !== undefined && !['sandbox', 'insecure'].includes(security)) throw new Error(`invalid security mode "${security}"`);
      return { ...base, kind: 'run', cmd: a, prependShell: !n.json, files, mounts: f.lists.get('mount') ?? [], network, security };
    }
    case 'cmd':
    case 'entrypoint':
      return { ...base, kind: keyword, cmd: a, prependShell: !n.json };
    case 'shell':
      if (!n.json) throw new Error('SHELL requires the arguments to be in JSON form');
      if (a.length === 0) throw new Error('SHELL requires at least one argument');
      return { ...base, kind: 'shell', shell: a };
    case 'copy':
    case 'add': {
      if (a.length < 2) throw new Error(`${keyword.toUpperCase()} requires at least two arguments, but only one was provided. Destination could not be determined`);
      const dest = a[a.length - 1]!;
      const docs = n.json ? [] : n.heredocs;
      if (!n.json && parseHeredocWord(dest)) throw new Error(`${keyword.toUpperCase()} cannot accept a heredoc as a destination`);
      const byName = new Map(docs.map((h) => [h.name, h]));
      const contents: SourceContent[] = [];
      const sources: string[] = [];
      for (const s of a.slice(0, -1)) {
        const h = n.json ? null : parseHeredocWord(s);
        if (h) {
          const body = byName.get(h.name)?.content ?? '';
          contents.push({ path: h.name, data: h.chomp ? chompHeredocContent(body) : body, expand: h.expand });
        } else {
          sources.push(s);
        }
      }
      if (sources.length + contents.length < 1) throw new Error(`${keyword.toUpperCase()} requires at least two arguments`);
      const common = {
        ...base,
        sources,
        contents,
        dest,
        json: n.json,
        chown: f.strings.get('chown'),
        chmod: f.strings.get('chmod'),
        link: f.bools.get('link') ?? false,
        excludes: f.lists.get('exclude') ?? [],
      };
      if (keyword === 'copy') {
        return { ...common, kind: 'copy', from: f.strings.get('from'), parents: f.bools.get('parents') ?? false };
      }
      return {
        ...common,
        kind: 'add',
        parents: false,
        keepGitDir: f.bools.get('keep-git-dir'),
        checksum: f.strings.get('checksum'),
        unpack: f.bools.get('unpack'),
      };
    }
    case 'env':
    case 'label': {
      if (a.length === 0) throw new Error(`${keyword.toUpperCase()} requires at least one argument`);
      if (a.length % 3 !== 0) throw new Error(`Bad input to ${keyword.toUpperCase()}, too many arguments`);
      const pairs: KeyValue[] = [];
      for (let i = 0; i < a.length; i += 3) pairs.push({ key: a[i]!, value: a[i + 1]!, legacy: a[i + 2] === '' });
      return { ...base, kind: keyword, pairs };
    }
    case 'arg': {
      if (a.length === 0) throw new Error('ARG requires at least one argument');
      return {
        ...base,
        kind: 'arg',
        args: a.map((w) => {
          const i = w.indexOf('=');
          return i < 0 ? { key: w } : { key: w.slice(0, i), value: w.slice(i + 1) };
        }),
      };
    }
    case 'workdir':
    case 'user':
    case 'stopsignal':
    case 'maintainer':
      if (a.length !== 1) throw new Error(`${keyword.toUpperCase()} requires exactly one argument`);
      return { ...base, kind: keyword, value: a[0]! };
    case 'expose':
      if (a.length === 0) throw new Error('EXPOSE requires at least one argument');
      return { ...base, kind: 'expose', ports: a };
    case 'volume':
      if (a.length === 0) throw new Error('VOLUME requires at least one argument');
      for (const v of a) if (v.trim() === '') throw new Error('VOLUME specified can not be an empty string');
      return { ...base, kind: 'volume', volumes: a };
    case 'healthcheck': {
      if (a.length === 0) throw new Error('HEALTHCHECK requires an argument');
      const type = a[0]!.toUpperCase();
      const hc = {
        ...base,
        kind: 'healthcheck' as const,
        type,
        prependShell: !n.json,
        interval: f.strings.get('interval'),
        timeout: f.strings.get('timeout'),
        startPeriod: f.strings.get('start-period'),
        startInterval: f.strings.get('start-interval'),
        retries: f.strings.get('retries'),
      };
      if (type === 'NONE') {
        if (a.length > 1) throw new Error('HEALTHCHECK NONE takes no arguments');
        return { ...hc, test: ['NONE'] };
      }
      return { ...hc, test: a.slice(1) };
    }
    case 'onbuild': {
      const child = n.next?.children[0];
      if (!child) throw new Error('ONBUILD requires at least one argument');
      const k = child.value.toUpperCase();
      if (k === 'ONBUILD') throw new Error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (k === 'FROM' || k === 'MAINTAINER') throw new Error(`${k} isn't allowed as an ONBUILD trigger`);
      // The stored trigger keeps heredoc bodies so that the child build can run it.
      let expression = n.original.trim().replace(/^onbuild\s+/i, '');
      // The parser attaches heredoc bodies to the ONBUILD node itself.
      for (const h of n.heredocs) expression += '\n' + h.content + h.name;
      instructionFromNode({ ...child, heredocs: n.heredocs, startLine: n.startLine, endLine: n.endLine });
      return { ...base, kind: 'onbuild', expression };
    }
  }
  throw new Error(`unknown instruction: ${n.value}`);
}

/**
 * Parses a Dockerfile into directives, global ARGs and stages. Throws DockerfileSyntaxError (with the
 * line range) for anything BuildKit would reject before building.
 */
export function parseDockerfile(text: string, file?: string): Dockerfile {
  let r;
  try {
    r = parseAST(text);
  } catch (e) {
    if (e instanceof DockerfileSyntaxError) e.file = file;
    throw e;
  }
  const globalArgs: Extract<Instruction, { kind: 'arg' }>[] = [];
  const stages: Stage[] = [];
  for (const n of r.ast.children) {
    let ins: Instruction;
    try {
      ins = instructionFromNode(n);
    } catch (e) {
      if (e instanceof DockerfileSyntaxError) throw e;
      throw new DockerfileSyntaxError((e as Error).message, n.startLine, n.endLine, file);
    }
    if (ins.kind === 'from') {
      const names = new Set(stages.map((s) => s.name).filter(Boolean));
      if (ins.stageName && names.has(ins.stageName)) {
        throw new DockerfileSyntaxError(`duplicate stage name "${ins.stageName}"`, n.startLine, n.endLine, file);
      }
      stages.push({ name: ins.stageName, from: ins, instructions: [], index: stages.length });
      continue;
    }
    const cur = stages[stages.length - 1];
    if (!cur) {
      if (ins.kind === 'arg') {
        globalArgs.push(ins);
        continue;
      }
      throw new DockerfileSyntaxError(
        `${n.value.toUpperCase()} before the first FROM: only ARG may come before FROM (add a FROM line first)`,
        n.startLine,
        n.endLine,
        file,
      );
    }
    cur.instructions.push(ins);
  }
  if (stages.length === 0) throw new DockerfileSyntaxError('no build stage in current context: the Dockerfile needs a FROM instruction', 0, 0, file);
  return { directives: r.directives, escapeToken: r.escapeToken, globalArgs, stages, warnings: r.warnings, ast: r.ast };
}

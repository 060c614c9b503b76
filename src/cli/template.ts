/**
 * `--format` as Docker users write it: Go's text/template over the JSON Docker would print, with
 * Docker's extra functions. Actions `{{pipeline}}` with `|` pipes and parentheses; fields `.A.B`,
 * `$`, variables (`{{$x := …}}`, `{{range $k, $v := …}}`); `if`/`else if`/`else`, `range`
 * (with `else`, `break`, `continue`), `with`; `{{- … -}}` trimming and comments (`{{/* … *\/}}`); Go's
 * functions (`and or not len index slice eq ne lt le gt ge print printf println`) and Docker's
 * (`json join split title lower upper pad truncate`). Values print as Go's %v does (`map[a:b]`,
 * `[x y]`, `<no value>`). A leading `table` adds a header row. Errors say where and what exists.
 */
import { UsageError } from '../errors/index.js';
import { GoNil } from '../app/index.js';
import { FUNCS, TemplateError, fail, field, isObject, show, truth } from './templatefuncs.js';

type Value = unknown;
type Arg =
  | { t: 'dot'; path: string[] }
  | { t: 'var'; name: string; path: string[] }
  | { t: 'lit'; v: Value }
  | { t: 'fn'; name: string }
  | { t: 'pipe'; p: Pipeline; path: string[] };
interface Pipeline { decl?: string[]; assign?: boolean; cmds: Arg[][] }
type Node =
  | { t: 'text'; s: string }
  | { t: 'out'; p: Pipeline }
  | Block
  | { t: 'break' }
  | { t: 'continue' };
interface Block { t: 'if' | 'with' | 'range'; p: Pipeline; body: Node[]; else?: Node[] }


// ---- lexing and parsing -------------------------------------------------------------------------

/** Splits the source into text and action bodies, applying `{{-` / `-}}` trimming; comments dropped. */
function segments(src: string): ({ text: string } | { action: string })[] {
  const out: ({ text: string } | { action: string })[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      if (text) out.push({ text });
      break;
    }
    let j = open + 2;
    const trimPrev = /^-\s/.test(src.slice(j, j + 2));
    if (trimPrev) text = text.replace(/\s+$/, '');
    if (text) out.push({ text });
    if (trimPrev) j += 2;
    let body = '';
    for (;;) {
      if (j >= src.length) fail(`unclosed action: ${src.slice(open, open + 20)}…`);
      const c = src[j]!;
      if (c === '"' || c === '`') {
        const end = c === '"' ? /"(?:[^"\\]|\\.)*"/y : /`[^`]*`/y;
        end.lastIndex = j;
        const m = end.exec(src) ?? fail(`unterminated string in ${src.slice(open, open + 30)}`);
        body += m[0];
        j += m[0].length;
      } else if (src.startsWith(' -}}', j) || src.startsWith('}}', j)) break;
      else body += src[j++];
    }
    trimNext = src.startsWith(' -}}', j);
    i = j + (trimNext ? 4 : 2);
    if (!/^\s*\/\*[\s\S]*\*\/\s*$/.test(body)) out.push({ action: body.trim() });
  }
  return out;
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;

/** Parses one action body (a pipeline, possibly with a declaration) into commands of arguments. */
function parsePipeline(s: string): Pipeline {
  let i = 0;
  const ws = () => {
    while (i < s.length && /\s/.test(s[i]!)) i++;
  };
  const path = (): string[] => {
    const p: string[] = [];
    while (s[i] === '.' && /[A-Za-z_]/.test(s[i + 1] ?? '')) {
      IDENT.lastIndex = i + 1;
      const m = IDENT.exec(s)!;
      p.push(m[0]);
      i += 1 + m[0].length;
    }
    return p;
  };
  const arg = (): Arg => {
    const c = s[i]!;
    if (c === '(') {
      i++;
      const inner = pipeline(')');
      if (s[i] !== ')') fail(`unclosed parenthesis in "${s}"`);
      i++;
      return { t: 'pipe', p: inner, path: path() };
    }
    if (c === '.') {
      const p = path();
      if (p.length === 0) i++;
      return { t: 'dot', path: p };
    }
    if (c === '$') {
      i++;
      IDENT.lastIndex = i;
      const m = s[i] && /[A-Za-z_]/.test(s[i]!) ? IDENT.exec(s) : null;
      if (m) i += m[0].length;
      return { t: 'var', name: `$${m?.[0] ?? ''}`, path: path() };
    }
    if (c === '"') {
      const m = /"(?:[^"\\]|\\.)*"/y;
      m.lastIndex = i;
      const lit = m.exec(s)![0];
      i += lit.length;
      // The CLI has already turned \n and \t into the characters (as Docker's does), so a quoted
      // "\n" arrives as a raw newline: taken as meant rather than refused.
      let v: string;
      try {
        v = JSON.parse(lit.replace(/\n/g, '\\n').replace(/\t/g, '\\t')) as string;
      } catch {
        v = fail(`bad string literal ${lit}`);
      }
      return { t: 'lit', v };
    }
    if (c === '`') {
      const end = s.indexOf('`', i + 1);
      const v = s.slice(i + 1, end);
      i = end + 1;
      return { t: 'lit', v };
    }
    const num = /[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:e[-+]?\d+)?)/y;
    num.lastIndex = i;
    const n = num.exec(s);
    if (n) {
      i += n[0].length;
      return { t: 'lit', v: Number(n[0]) };
    }
    IDENT.lastIndex = i;
    const id = IDENT.exec(s) ?? fail(`unexpected "${s.slice(i, i + 10)}" in "${s}"`);
    i += id[0].length;
    if (id[0] === 'true' || id[0] === 'false') return { t: 'lit', v: id[0] === 'true' };
    if (id[0] === 'nil') return { t: 'lit', v: null };
    return { t: 'fn', name: id[0] };
  };
  function pipeline(close?: string): Pipeline {
    const p: Pipeline = { cmds: [] };
    ws();
    const decl = /^(\$[A-Za-z_0-9]*)(?:\s*,\s*(\$[A-Za-z_0-9]*))?\s*(:=|=)(?!=)/.exec(s.slice(i));
    if (decl) {
      p.decl = [decl[1]!, ...(decl[2] ? [decl[2]] : [])];
      p.assign = decl[3] === '=';
      i += decl[0].length;
    }
    let cmd: Arg[] = [];
    for (;;) {
      ws();
      if (i >= s.length || s[i] === close) break;
      if (s[i] === '|') {
        if (!cmd.length) fail(`missing command before | in "${s}"`);
        p.cmds.push(cmd);
        cmd = [];
        i++;
        continue;
      }
      cmd.push(arg());
    }
    if (!cmd.length) fail(`missing value in "${s}"`);
    p.cmds.push(cmd);
    return p;
  }
  return pipeline();
}

function parse(src: string): Node[] {
  const segs = segments(src);
  let k = 0;
  /** Nodes up to an {{end}} or {{else…}} (returned as `stop`), or the end of the source. */
  const list = (): { nodes: Node[]; stop?: string } => {
    const nodes: Node[] = [];
    while (k < segs.length) {
      const seg = segs[k++]!;
      if ('text' in seg) {
        nodes.push({ t: 'text', s: seg.text });
        continue;
      }
      const a = seg.action;
      const word = /^(\w+)\b\s*/.exec(a);
      const kw = word?.[1];
      if (kw === 'end' || kw === 'else') return { nodes, stop: a };
      if (kw === 'break' || kw === 'continue') nodes.push({ t: kw });
      else if (kw === 'if' || kw === 'with' || kw === 'range') nodes.push(block(kw, a.slice(word![0].length)));
      else nodes.push({ t: 'out', p: parsePipeline(a) });
    }
    return { nodes };
  };
  const block = (t: 'if' | 'with' | 'range', expr: string): Node => {
    if (!expr.trim()) fail(`{{${t}}} needs a value`);
    const node: Block = { t, p: parsePipeline(expr), body: [] };
    const b = list();
    node.body = b.nodes;
    if (b.stop === undefined) fail(`{{${t}}} without {{end}}`);
    const chained = /^else\s+(if|with)\b\s*(.*)$/s.exec(b.stop!);
    if (chained) {
      // `{{else if x}}` is an if inside the else, closed by the same {{end}}.
      node.else = [block(chained[1] as 'if' | 'with', chained[2]!)];
    } else if (b.stop!.startsWith('else')) {
      const e = list();
      if (e.stop === undefined || !/^end$/.test(e.stop)) fail(`{{else}} of {{${t}}} without {{end}}`);
      node.else = e.nodes;
    }
    return node;
  };
  const top = list();
  if (top.stop !== undefined) fail(`{{${top.stop}}} without {{if}}, {{range}} or {{with}}`);
  return top.nodes;
}

// ---- execution ----------------------------------------------------------------------------------

interface Scope { dot: Value; vars: { name: string; v: Value }[] }

function lookup(s: Scope, name: string): Value {
  for (let i = s.vars.length - 1; i >= 0; i--) if (s.vars[i]!.name === name) return s.vars[i]!.v;
  return fail(`undefined variable ${name}`);
}

function evalArg(a: Arg, s: Scope): Value {
  switch (a.t) {
    case 'dot': return field(s.dot, a.path, '');
    case 'var': return field(lookup(s, a.name), a.path, a.name);
    case 'lit': return a.v;
    case 'pipe': return field(evalPipeline(a.p, s), a.path, '(…)');
    case 'fn': return call(a.name, [], s);
  }
}

function call(name: string, argNodes: Arg[], s: Scope, piped: Value[] = []): Value {
  // and/or evaluate lazily and return an operand, as Go's do.
  if (name === 'and' || name === 'or') {
    const all = [...argNodes.map((a) => () => evalArg(a, s)), ...piped.map((v) => () => v)];
    if (!all.length) fail(`${name} needs a value`);
    let v: Value;
    for (const f of all) {
      v = f();
      if (truth(v) !== (name === 'and')) return v;
    }
    return v;
  }
  const fn = FUNCS[name] ?? fail(`unknown function "${name}" (known: ${['and', 'or', ...Object.keys(FUNCS)].sort().join(', ')})`);
  return fn([...argNodes.map((a) => evalArg(a, s)), ...piped]);
}

function evalPipeline(p: Pipeline, s: Scope): Value {
  let v: Value;
  p.cmds.forEach((cmd, i) => {
    const [head, ...rest] = cmd;
    const piped = i > 0 ? [v] : [];
    if (head!.t === 'fn') v = call(head!.name, rest, s, piped);
    else if (rest.length || piped.length) fail('only a function takes arguments (a value cannot)');
    else v = evalArg(head!, s);
  });
  if (p.decl) {
    if (p.assign) {
      const slot = [...s.vars].reverse().find((x) => x.name === p.decl![0]) ?? fail(`undefined variable ${p.decl[0]}`);
      slot.v = v;
    } else s.vars.push({ name: p.decl[0]!, v });
  }
  return v;
}

type Flow = 'break' | 'continue' | undefined;

/** Runs nodes, appending to `out`; a {{break}} or {{continue}} returns to the enclosing range. */
function exec(nodes: Node[], s: Scope, out: string[]): Flow {
  for (const n of nodes) {
    if (n.t === 'text') out.push(n.s);
    else if (n.t === 'out') {
      const v = evalPipeline(n.p, s);
      if (!n.p.decl) out.push(show(v));
    } else if (n.t === 'break' || n.t === 'continue') return n.t;
    else {
      const depth = s.vars.length;
      try {
        const v = evalPipeline({ ...n.p, decl: n.t === 'range' ? undefined : n.p.decl }, s);
        let flow: Flow;
        if (n.t === 'if') flow = exec(truth(v) ? n.body : (n.else ?? []), s, out);
        else if (n.t === 'with') flow = truth(v) ? exec(n.body, { ...s, dot: v }, out) : exec(n.else ?? [], s, out);
        else {
          const items: [Value, Value][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : isObject(v) ? Object.keys(v).sort().map((k) => [k, v[k]]) : v === undefined || v === null || v instanceof GoNil ? [] : fail(`range over ${show(v)}, which is not a list or a map`);
          if (!items.length) flow = exec(n.else ?? [], s, out);
          for (const [k, x] of items) {
            const d = n.p.decl;
            const vars = [...s.vars, ...(d?.length === 1 ? [{ name: d[0]!, v: x }] : d?.length === 2 ? [{ name: d[0]!, v: k }, { name: d[1]!, v: x }] : [])];
            if (exec(n.body, { dot: x, vars }, out) === 'break') break;
          }
        }
        if (flow) return flow;
      } finally {
        s.vars.length = depth;
      }
    }
  }
  return undefined;
}

/** Formats each row with the template; `table` adds a header of the field names (upper-cased, as Docker). */
export function formatRows(format: string, rows: Value[]): string {
  const table = /^table\s*/.test(format);
  const src = format.replace(/^table\s*/, '').replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  let lines: string[];
  try {
    const nodes = parse(src);
    lines = rows.map((r) => {
      const out: string[] = [];
      const flow = exec(nodes, { dot: r, vars: [{ name: '$', v: r }] }, out);
      if (flow) fail(`{{${flow}}} outside {{range}}`);
      return out.join('');
    });
  } catch (e) {
    if (e instanceof TemplateError) throw new UsageError(`--format ${format}: ${e.message}`);
    throw e;
  }
  if (!table) return lines.map((l) => (l.endsWith('\n') ? l : l + '\n')).join('');
  const header = src.replace(/\{\{-?\s*(?:json\s+)?\.(\w+)[^}]*\}\}/g, (_, f: string) => f.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase());
  // Columns are tab-separated in the template; align them as Docker's tabwriter does.
  const cells = [header, ...lines].map((l) => l.replace(/\n$/, '').split('\t'));
  const w = cells[0]!.map((_, i) => Math.max(...cells.map((c) => (c[i] ?? '').length)));
  return cells.map((c) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(w[i]! + 3))).join('')).join('\n') + '\n';
}

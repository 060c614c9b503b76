/**
 * `--format` as Docker users write it, a small subset of Go's text/template: `{{.Field}}` and
 * `{{.A.B}}`, `{{json .}}` and `{{json .Field}}`, `{{range .List}}…{{end}}` (with `.` the item),
 * `{{if .X}}…{{end}}`, `{{join .List ","}}`, `{{upper .X}}`/`{{lower .X}}`, `\t` and `\n`, and a leading
 * `table` that prints a header row of the field names. Unknown fields and functions are errors that
 * list what exists, not empty output.
 */
import { UsageError } from '../errors/index.js';

type Value = unknown;

function field(v: Value, dotted: string, format: string): Value {
  if (dotted === '.') return v;
  let cur = v;
  for (const name of dotted.slice(1).split('.')) {
    if (cur === null || typeof cur !== 'object' || !(name in (cur as object))) {
      const known = cur !== null && typeof cur === 'object' ? Object.keys(cur as object).join(', ') : 'none';
      throw new UsageError(`--format ${format}: no field "${name}" (fields here: ${known})`);
    }
    cur = (cur as Record<string, Value>)[name];
  }
  return cur;
}

const str = (v: Value) => (v === undefined || v === null ? '<no value>' : typeof v === 'object' ? JSON.stringify(v) : String(v));

function evalAction(action: string, dot: Value, format: string): Value {
  const words = action.trim().match(/"[^"]*"|\S+/g) ?? [];
  const arg = (w: string | undefined) => (w === undefined ? dot : w.startsWith('"') ? w.slice(1, -1) : field(dot, w, format));
  const [fn, a, b] = words;
  if (fn?.startsWith('.')) return field(dot, fn, format);
  switch (fn) {
    case 'json': return JSON.stringify(arg(a));
    case 'upper': return str(arg(a)).toUpperCase();
    case 'lower': return str(arg(a)).toLowerCase();
    case 'join': {
      const list = arg(a);
      return Array.isArray(list) ? list.map(str).join(String(arg(b))) : str(list);
    }
    case 'println': return words.slice(1).map((w) => str(arg(w))).join(' ') + '\n';
  }
  throw new UsageError(`--format ${format}: unknown function "${fn}" (tsbuild knows json, join, upper, lower, println, range, if)`);
}

interface Node { text?: string; action?: string; block?: { kind: 'range' | 'if'; expr: string; body: Node[] } }

function parse(src: string, format: string): Node[] {
  const out: Node[][] = [[]];
  const open: { kind: 'range' | 'if'; expr: string }[] = [];
  const re = /\{\{-?\s*(.*?)\s*-?\}\}/gs;
  let last = 0;
  for (const m of src.matchAll(re)) {
    if (m.index! > last) out.at(-1)!.push({ text: src.slice(last, m.index) });
    last = m.index! + m[0].length;
    const a = m[1]!;
    const blk = /^(range|if)\s+(.+)$/.exec(a);
    if (blk) {
      open.push({ kind: blk[1] as 'range' | 'if', expr: blk[2]! });
      out.push([]);
    } else if (a === 'end') {
      const o = open.pop();
      if (!o) throw new UsageError(`--format ${format}: {{end}} without {{range}} or {{if}}`);
      const body = out.pop()!;
      out.at(-1)!.push({ block: { ...o, body } });
    } else out.at(-1)!.push({ action: a });
  }
  if (open.length) throw new UsageError(`--format ${format}: {{${open.at(-1)!.kind}}} without {{end}}`);
  if (last < src.length) out[0]!.push({ text: src.slice(last) });
  return out[0]!;
}

function render(nodes: Node[], dot: Value, format: string): string {
  let s = '';
  for (const n of nodes) {
    if (n.text !== undefined) s += n.text;
    else if (n.action !== undefined) s += str(evalAction(n.action, dot, format));
    else if (n.block) {
      const v = evalAction(n.block.expr, dot, format);
      if (n.block.kind === 'if') {
        if (v && !(Array.isArray(v) && v.length === 0) && v !== '') s += render(n.block.body, dot, format);
      } else if (Array.isArray(v)) for (const item of v) s += render(n.block.body, item, format);
      else if (v && typeof v === 'object') for (const item of Object.values(v)) s += render(n.block.body, item, format);
    }
  }
  return s;
}

/** Formats each row with the template; `table` adds a header of the field names (upper-cased, as Docker). */
export function formatRows(format: string, rows: Value[]): string {
  const table = /^table\s*/.test(format);
  const src = format.replace(/^table\s*/, '').replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const nodes = parse(src, format);
  const lines = rows.map((r) => render(nodes, r, format));
  if (!table) return lines.map((l) => (l.endsWith('\n') ? l : l + '\n')).join('');
  const header = src.replace(/\{\{\s*(?:json\s+)?\.(\w+)[^}]*\}\}/g, (_, f: string) => f.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase());
  // Columns are tab-separated in the template; align them as Docker's tabwriter does.
  const cells = [header, ...lines].map((l) => l.replace(/\n$/, '').split('\t'));
  const w = cells[0]!.map((_, i) => Math.max(...cells.map((c) => (c[i] ?? '').length)));
  return cells.map((c) => c.map((x, i) => (i === c.length - 1 ? x : x.padEnd(w[i]! + 3))).join('')).join('\n') + '\n';
}

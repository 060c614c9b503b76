/**
 * What Go's text/template does with values, for --format (template.ts): how they print (%v), which
 * are true, field access, and the functions Go and Docker give templates.
 */

import { GoNil } from '../app/index.js';

type Value = unknown;

/** A mistake in a template or in what it asks of the data; template.ts adds the --format text. */
export class TemplateError extends Error {}
export const fail = (m: string): never => {
  throw new TemplateError(m);
};

// ---- values, as Go prints and tests them --------------------------------------------------------

export const isObject = (v: Value): v is Record<string, Value> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof GoNil);
/** Docker's JSON objects with Go-exported names are structs; other objects (labels, options) are maps. */
export const structLike = (v: Record<string, Value>) => {
  const keys = Object.keys(v);
  return keys.length > 0 && keys.every((k) => /^[A-Z]/.test(k));
};

export function show(v: Value): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (v instanceof GoNil) return v.kind === 'slice' ? '[]' : v.kind === 'map' ? 'map[]' : '<nil>';
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (isObject(v)) {
    if (structLike(v)) return `{${Object.values(v).map(show).join(' ')}}`;
    return `map[${Object.keys(v).sort().map((k) => `${k}:${show(v[k])}`).join(' ')}]`;
  }
  return String(v);
}

export function truth(v: Value): boolean {
  if (v === undefined || v === null || v instanceof GoNil) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return structLike(v) || Object.keys(v).length > 0;
  return Boolean(v);
}

export function field(v: Value, path: string[], from: string): Value {
  let cur = v;
  let at = from;
  for (const name of path) {
    if (isObject(cur)) {
      if (name in cur) cur = cur[name];
      else if (structLike(cur)) fail(`can't evaluate field ${name} in ${at || '.'} (fields here: ${Object.keys(cur).join(', ')})`);
      else cur = undefined;
    } else if (cur instanceof GoNil && cur.kind === 'map') cur = undefined;
    else if (cur instanceof GoNil && cur.kind === 'pointer') fail(`nil pointer evaluating ${at || '.'}.${name} (test it first: {{if ${at || '.'}}}…{{end}})`);
    else if (cur === undefined || cur === null) fail(`nil value evaluating ${at || '.'}.${name}`);
    else fail(`can't evaluate field ${name} in ${at || '.'}, which is ${Array.isArray(cur) ? 'a list' : `the ${typeof cur} ${show(cur)}`}`);
    at += `.${name}`;
  }
  return cur;
}

// ---- functions ----------------------------------------------------------------------------------

function sprintf(format: string, args: Value[]): string {
  let n = 0;
  return format.replace(/%([-+ 0#]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])/g, (_, flags: string, width?: string, prec?: string, verb?: string) => {
    if (verb === '%') return '%';
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const a = args[n++];
    let s: string;
    switch (verb) {
      case 'd': s = typeof a === 'number' ? String(Math.trunc(a)) : `%!d(${show(a)})`; break;
      case 'f': case 'F': s = typeof a === 'number' ? a.toFixed(prec === undefined ? 6 : Number(prec)) : `%!f(${show(a)})`; break;
      case 'e': s = typeof a === 'number' ? a.toExponential(prec === undefined ? 6 : Number(prec)).replace(/e([-+])(\d)$/, 'e$10$2') : `%!e(${show(a)})`; break;
      case 'g': s = typeof a === 'number' ? String(a) : `%!g(${show(a)})`; break;
      case 'q': s = JSON.stringify(typeof a === 'string' ? a : show(a)); break;
      case 't': s = typeof a === 'boolean' ? String(a) : `%!t(${show(a)})`; break;
      case 'x': case 'X': {
        s = typeof a === 'number' ? Math.trunc(a).toString(16) : Buffer.from(typeof a === 'string' ? a : show(a)).toString('hex');
        if (verb === 'X') s = s.toUpperCase();
        break;
      }
      case 'c': s = typeof a === 'number' ? String.fromCodePoint(a) : `%!c(${show(a)})`; break;
      case 's': case 'v': s = show(a); if (verb === 's' && prec !== undefined) s = [...s].slice(0, Number(prec)).join(''); break;
      default: s = `%!${verb}(${show(a)})`;
    }
    if (flags.includes('+') && typeof a === 'number' && a >= 0 && 'dfeg'.includes(verb!)) s = `+${s}`;
    const w = Number(width ?? 0);
    if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : flags.includes('0') && typeof a === 'number' ? s.padStart(w, '0') : s.padStart(w);
    return s;
  }) + (n < args.length ? `%!(EXTRA ${args.slice(n).map(show).join(', ')})` : '');
}

/** Go's fmt.Sprint: a space between two operands when neither is a string. */
const sprint = (args: Value[]) => args.map((a, i) => (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string' ? ' ' : '') + show(a)).join('');

function compare(name: string, a: Value, b: Value): number {
  if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) fail(`${name}: cannot compare ${show(a)} and ${show(b)}`);
  return a === b ? 0 : (a as number) < (b as number) ? -1 : 1;
}

export const FUNCS: Record<string, (args: Value[]) => Value> = {
  json: ([v]) => JSON.stringify(v ?? null),
  join: ([list, sep]) => (Array.isArray(list) ? list.map(show).join(String(sep ?? '')) : show(list)),
  split: ([s, sep]) => String(s).split(String(sep)),
  title: ([s]) => String(s).replace(/(^|[^\p{L}\p{N}'])(\p{L})/gu, (_, pre: string, c: string) => pre + c.toUpperCase()),
  lower: ([s]) => show(s).toLowerCase(),
  upper: ([s]) => show(s).toUpperCase(),
  pad: ([s, before, after]) => ' '.repeat(Number(before)) + show(s) + ' '.repeat(Number(after)),
  truncate: ([s, n]) => [...show(s)].slice(0, Number(n)).join(''),
  len: ([v]) => (v instanceof GoNil ? 0 : typeof v === 'string' || Array.isArray(v) ? v.length : isObject(v) ? Object.keys(v).length : fail(`len of ${show(v)}`)),
  index: ([v, ...keys]) => {
    let cur = v instanceof GoNil ? (v.kind === 'map' ? {} : []) : v;
    for (const k of keys) {
      if (Array.isArray(cur) && typeof k === 'number') cur = k >= 0 && k < cur.length ? cur[k] : fail(`index ${k} out of range (length ${cur.length})`);
      else if (isObject(cur)) cur = k !== undefined && String(k) in cur ? cur[String(k)] : Object.values(cur).every((x) => typeof x === 'string') ? '' : undefined;
      else fail(`cannot index ${show(cur)} with ${show(k)}`);
    }
    return cur;
  },
  slice: ([v, from, to]) => (typeof v === 'string' || Array.isArray(v) ? v.slice(Number(from ?? 0), to === undefined ? undefined : Number(to)) : fail(`cannot slice ${show(v)}`)),
  print: (args) => sprint(args),
  printf: ([f, ...args]) => sprintf(String(f), args),
  println: (args) => `${args.map(show).join(' ')}\n`,
  eq: ([a, ...bs]) => (bs.length ? bs.some((b) => a === b) : fail('eq needs two values')),
  ne: ([a, b]) => a !== b,
  lt: ([a, b]) => compare('lt', a, b) < 0,
  le: ([a, b]) => compare('le', a, b) <= 0,
  gt: ([a, b]) => compare('gt', a, b) > 0,
  ge: ([a, b]) => compare('ge', a, b) >= 0,
  not: ([a]) => !truth(a),
};

/**
 * Line-level parsing as BuildKit's parser does it: directives, comments and continuations, builder
 * flags (`--from=x`), and the per-instruction argument splitting (JSON arrays, whitespace lists,
 * name=value pairs) whose dump the conformance `result` files record.
 */
import { DirectiveScanner, DirectiveError, type Directive } from './directives.js';
import { goQuote } from './quote.js';
import { node, type Node } from './node.js';

const reWhitespace = /[\t\v\f\r ]+/;
const isSpace = (ch: string) => {
  const c = ch.charCodeAt(0);
  return c === 32 || (c >= 9 && c <= 13) || (c > 127 && /^\s$/u.test(ch));
};

export class Directives {
  escapeToken = '\\';
  private scanner = new DirectiveScanner();
  possible(line: string): void {
    const d = this.scanner.parseLine(line);
    if (d && d.name === 'escape') {
      if (d.value !== '`' && d.value !== '\\') {
        throw new DirectiveError(`invalid escape token '${d.value}' does not match \` or \\`);
      }
      this.escapeToken = d.value;
    }
  }
  get all(): Directive[] {
    return this.scanner.directives;
  }
}

export function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, '');
}
export function trimLeadingWhitespace(s: string): string {
  return s.replace(/^\s+/u, '');
}
export function isComment(line: string): boolean {
  return trimLeadingWhitespace(trimNewline(line)).startsWith('#');
}

/**
 * A line continues when its last non-blank character is the escape character and that character is not
 * itself escaped (`\\` at the end is a literal backslash: docker/for-win#5254).
 */
export function trimContinuation(line: string, esc: string): [string, boolean] {
  const m = /[ \t]*$/.exec(line)!;
  const body = line.slice(0, m.index);
  if (body.endsWith(esc)) {
    const before = body.length >= 2 ? body[body.length - 2] : undefined;
    if (before !== esc) return [body.slice(0, -1), false];
  }
  return [line, true];
}

/** Quote-aware word splitting that keeps quotes and escapes (ARG, ENV, LABEL). */
export function parseWords(rest: string, esc = '\\'): string[] {
  const words: string[] = [];
  let phase: 0 | 1 | 2 = 0;
  let word = '';
  let quote = '';
  let blankOK = false;
  const chars = Array.from(rest);
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? chars[pos]! : '';
    if (phase === 0) {
      if (pos === chars.length) break;
      if (isSpace(ch)) continue;
      phase = 1;
    }
    if (pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 1) {
      if (isSpace(ch)) {
        phase = 0;
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 2;
      }
      if (ch === esc) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos]!;
      }
      word += ch;
      continue;
    }
    // in quote
    if (ch === quote) phase = 1;
    if (ch === esc && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 1;
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos]!;
    }
    word += ch;
  }
  return words;
}

/** Splits the leading `--flag` words off an instruction's arguments (BuildKit's extractBuilderFlags). */
function extractBuilderFlags(line: string): [string, string[]] {
  const words: string[] = [];
  let phase: 0 | 1 | 2 = 0;
  let word = '';
  let quote = '';
  let blankOK = false;
  const chars = Array.from(line);
  const rest = (pos: number) => chars.slice(pos).join('');
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? chars[pos]! : '';
    if (phase === 0) {
      if (pos === chars.length) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || pos + 1 === chars.length || chars[pos + 1] !== '-') return [rest(pos), words];
      phase = 1;
    }
    if (pos === chars.length) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === 1) {
      if (isSpace(ch)) {
        phase = 0;
        if (word === '--') return [rest(pos), words];
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 2;
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === chars.length) continue;
        pos++;
        ch = chars[pos]!;
      }
      word += ch;
      continue;
    }
    if (ch === quote) {
      phase = 1;
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === chars.length) {
        phase = 1;
        continue;
      }
      pos++;
      ch = chars[pos]!;
    }
    word += ch;
  }
  return ['', words];
}

class NotStringArrayError extends Error {}

/**
 * Exec form: the text decodes as a JSON array of strings. Returns undefined when it is not JSON (shell
 * form follows); throws only for an array with a non-string element. No exceptions on the common
 * shell-form path: they cost more than the parse itself.
 */
function parseJSON(rest: string): { next: Node | null } | undefined {
  rest = trimLeadingWhitespace(rest);
  if (!rest.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(rest);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  let top: Node | null = null;
  let prev: Node | null = null;
  for (const s of v) {
    if (typeof s !== 'string') throw new NotStringArrayError('when using JSON array syntax, arrays must be comprised of strings only');
    const n = node(s);
    if (prev) prev.next = n;
    else top = n;
    prev = n;
  }
  return { next: top };
}

type LineParser = (rest: string, d: Directives) => { next: Node | null; json?: boolean };

function parseMaybeJSON(rest: string): { next: Node | null; json?: boolean } {
  if (rest === '') return { next: null };
  const j = parseJSON(rest);
  if (j) return { next: j.next, json: true };
  return { next: node(rest) };
}

function parseStringsWhitespaceDelimited(rest: string): { next: Node | null } {
  if (rest === '') return { next: null };
  let top: Node | null = null;
  let prev: Node | null = null;
  for (const s of rest.split(reWhitespace)) {
    const n = node(s);
    if (prev) prev.next = n;
    else top = n;
    prev = n;
  }
  return { next: top };
}

function parseMaybeJSONToList(rest: string): { next: Node | null; json?: boolean } {
  const j = parseJSON(rest);
  if (j) return { next: j.next, json: true };
  return parseStringsWhitespaceDelimited(rest);
}

function keyValue(key: string, value: string, sep: string): Node {
  return node(key, node(value, node(sep)));
}

function parseNameVal(rest: string, key: string, d: Directives): Node | null {
  const words = parseWords(rest, d.escapeToken);
  if (words.length === 0) return null;
  if (!words[0]!.includes('=')) {
    const m = reWhitespace.exec(rest);
    if (!m) throw new Error(`${key} must have two arguments`);
    return keyValue(rest.slice(0, m.index), rest.slice(m.index + m[0].length), '');
  }
  let top: Node | null = null;
  let last: Node | null = null;
  for (const w of words) {
    const i = w.indexOf('=');
    if (i < 0) throw new Error(`Syntax error - can't find = in ${goQuote(w)}. Must be of the form: name=value`);
    const n = keyValue(w.slice(0, i), w.slice(i + 1), '=');
    if (last) last.next!.next!.next = n;
    else top = n;
    last = n;
  }
  return top;
}

const dispatch: Record<string, LineParser> = {
  add: parseMaybeJSONToList,
  copy: parseMaybeJSONToList,
  volume: parseMaybeJSONToList,
  cmd: parseMaybeJSON,
  entrypoint: parseMaybeJSON,
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  env: (rest, d) => ({ next: parseNameVal(rest, 'ENV', d) }),
  label: (rest, d) => ({ next: parseNameVal(rest, 'LABEL', d) }),
  arg: (rest, d) => {
    let top: Node | null = null;
    let prev: Node | null = null;
    for (const w of parseWords(rest, d.escapeToken)) {
      const n = node(w);
      if (prev) prev.next = n;
      else top = n;
      prev = n;
    }
    return { next: top };
  },
  expose: parseStringsWhitespaceDelimited,
  from: parseStringsWhitespaceDelimited,
  maintainer: (rest) => ({ next: rest === '' ? null : node(rest) }),
  stopsignal: (rest) => ({ next: rest === '' ? null : node(rest) }),
  user: (rest) => ({ next: rest === '' ? null : node(rest) }),
  workdir: (rest) => ({ next: rest === '' ? null : node(rest) }),
  healthcheck: (rest) => {
    let sep = 0;
    while (sep < rest.length && !isSpace(rest[sep]!)) sep++;
    let nxt = sep;
    while (nxt < rest.length && isSpace(rest[nxt]!)) nxt++;
    if (sep === 0) return { next: null };
    const cmd = parseMaybeJSON(rest.slice(nxt));
    return { next: node(rest.slice(0, sep), cmd.next), json: cmd.json };
  },
  onbuild: (rest, d) => {
    if (rest === '') return { next: null };
    const child = newNodeFromLine(rest, d, []);
    const n = node();
    n.children = [child];
    return { next: n };
  },
};

export function newNodeFromLine(line: string, d: Directives, comments: string[]): Node {
  const trimmed = line.trim();
  const m = reWhitespace.exec(trimmed);
  const cmd = m ? trimmed.slice(0, m.index) : trimmed;
  let flags: string[] = [];
  let args = '';
  if (m) {
    [args, flags] = extractBuilderFlags(trimmed.slice(m.index + m[0].length));
  }
  args = args.trim();
  const fn = dispatch[cmd.toLowerCase()] ?? (() => ({ next: node() }));
  const r = fn(args, d);
  const n = node(cmd, r.next);
  n.original = line;
  n.flags = flags;
  n.json = r.json ?? false;
  n.prevComment = comments;
  return n;
}

/**
 * The raw Dockerfile AST, built exactly as BuildKit's parser (frontend/dockerfile/parser) builds it:
 * directives, line joining with the escape character, comments inside continuations, heredoc bodies,
 * and the per-instruction argument splitting whose dump the conformance `result` files record.
 */
import { DockerfileSyntaxError } from '../errors/index.js';
import { DirectiveScanner, DirectiveError, type Directive } from './directives.js';
import { goQuote } from './quote.js';
import { processWords, ShellExpansionError } from './shell.js';

export interface Heredoc {
  name: string;
  fileDescriptor: number;
  expand: boolean;
  chomp: boolean;
  content: string;
}

export interface Node {
  value: string;
  next: Node | null;
  children: Node[];
  heredocs: Heredoc[];
  json: boolean;
  original: string;
  flags: string[];
  startLine: number;
  endLine: number;
  prevComment: string[];
}

export interface Warning {
  short: string;
  detail: string;
  rule: string;
  line: number;
}

export interface ParseResult {
  ast: Node;
  directives: Directive[];
  escapeToken: string;
  warnings: Warning[];
}

export const MAX_LINE_BYTES = 65535;

function node(value = '', next: Node | null = null): Node {
  return { value, next, children: [], heredocs: [], json: false, original: '', flags: [], startLine: 0, endLine: 0, prevComment: [] };
}

/** BuildKit's Node.Dump. */
export function dumpNode(n: Node): string {
  let str = n.value.toLowerCase();
  if (n.flags.length > 0) str += ' [' + n.flags.map(goQuote).join(' ') + ']';
  for (const c of n.children) str += '(' + dumpNode(c) + ')\n';
  for (let x = n.next; x; x = x.next) {
    str += x.children.length > 0 ? ' ' + dumpNode(x) : ' ' + goQuote(x.value);
  }
  return str.trim();
}

const reWhitespace = /[\t\v\f\r ]+/;
const isSpace = (ch: string) => {
  const c = ch.charCodeAt(0);
  return c === 32 || (c >= 9 && c <= 13) || (c > 127 && /^\s$/u.test(ch));
};

class Directives {
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

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, '');
}
function trimLeadingWhitespace(s: string): string {
  return s.replace(/^\s+/u, '');
}
function isComment(line: string): boolean {
  return trimLeadingWhitespace(trimNewline(line)).startsWith('#');
}

/**
 * A line continues when its last non-blank character is the escape character and that character is not
 * itself escaped (`\\` at the end is a literal backslash: docker/for-win#5254).
 */
function trimContinuation(line: string, esc: string): [string, boolean] {
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

function newNodeFromLine(line: string, d: Directives, comments: string[]): Node {
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

const heredocInstructions = new Set(['add', 'copy', 'run']);

function canContainHeredoc(n: Node): boolean {
  if (n.value.toLowerCase() === 'onbuild' && n.next && n.next.children.length > 0) n = n.next.children[0]!;
  return heredocInstructions.has(n.value.toLowerCase()) && !n.json;
}

const reHeredoc = /^(\d*)<<(-?)\s*([^<]*)$/u;

/** Recognises one heredoc word (`<<EOF`, `<<-'EOF'`, `3<<EOF`); null when it is not a heredoc. */
export function parseHeredocWord(src: string): Heredoc | null {
  const m = reHeredoc.exec(src);
  if (!m) return null;
  const fd = m[1] === '' ? 0 : parseInt(m[1]!, 10);
  const chomp = m[2] === '-';
  const rest = m[3]!;
  if (rest.length === 0) return null;
  const words = processWords(rest, {}, { skipUnsetEnv: true });
  if (words.length !== 1) return null;
  const raw = processWords(rest, {}, { skipUnsetEnv: true, rawQuotes: true });
  if (raw.length !== words.length) throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const count = (s: string) => (s.match(/['"]/g) ?? []).length;
  return { name: words[0]!, fileDescriptor: fd, expand: count(words[0]!) === count(raw[0]!), chomp, content: '' };
}

/** The heredocs an instruction line opens, in order. */
export function heredocsFromLine(line: string): Heredoc[] {
  const words = processWords(line, {}, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  const docs: Heredoc[] = [];
  for (let i = 0; i < words.length; i++) {
    let w = words[i]!;
    // `<< EOF`: the lexer splits the operator from its word; BuildKit accepts the space.
    if (/^\d*<<-?$/.test(w) && i + 1 < words.length) w += ' ' + words[++i]!;
    const h = parseHeredocWord(w);
    if (h) docs.push(h);
  }
  return docs;
}

/** Removes leading tabs from every line (`<<-`). */
export function chompHeredocContent(s: string): string {
  return s.replace(/^\t+/gm, '');
}

function splitLinesKeepEnds(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const i = text.indexOf('\n', start);
    if (i < 0) {
      if (start < text.length) out.push(text.slice(start));
      return out;
    }
    out.push(text.slice(start, i + 1));
    start = i + 1;
  }
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Parses Dockerfile text into BuildKit's AST. Throws DockerfileSyntaxError only. */
export function parseAST(text: string): ParseResult {
  const d = new Directives();
  const lines = splitLinesKeepEnds(text);
  const root = node();
  root.startLine = -1;
  const warnings: Warning[] = [];
  let comments: string[] = [];
  let currentLine = 0;
  let li = 0;
  const fail = (msg: string, start: number, end = start): never => {
    throw new DockerfileSyntaxError(msg, start, end);
  };
  const scan = (): string | null => {
    if (li >= lines.length) return null;
    const l = lines[li++]!;
    if (utf8Length(trimNewline(l)) > MAX_LINE_BYTES) fail(`dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`, li);
    return l;
  };
  const processLine = (token: string, stripLeft: boolean): string => {
    token = trimNewline(token);
    if (stripLeft) token = trimLeadingWhitespace(token);
    try {
      d.possible(token);
    } catch (e) {
      fail((e as Error).message, currentLine + 1);
    }
    return isComment(token) ? '' : token;
  };

  for (let raw = scan(); raw !== null; raw = scan()) {
    if (currentLine === 0 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
    if (isComment(raw)) {
      const c = trimLeadingWhitespace(trimNewline(raw)).slice(1).trim();
      comments = c === '' ? [] : [...comments, c];
    }
    let bytesRead = processLine(raw, true);
    currentLine++;
    const startLine = currentLine;
    let isEnd: boolean;
    [bytesRead, isEnd] = trimContinuation(bytesRead, d.escapeToken);
    if (isEnd && bytesRead.length === 0) continue;
    let buf = bytesRead;
    let hasEmptyContinuation = false;
    while (!isEnd) {
      const nraw = scan();
      if (nraw === null) break;
      const l = processLine(nraw, false);
      currentLine++;
      if (isComment(nraw)) continue;
      if (trimLeadingWhitespace(trimNewline(l)).length === 0) {
        hasEmptyContinuation = true;
        continue;
      }
      let cont: string;
      [cont, isEnd] = trimContinuation(l, d.escapeToken);
      buf += cont;
    }
    const line = buf;
    if (hasEmptyContinuation) {
      warnings.push({
        short: 'Empty continuation line found in: ' + line,
        detail: 'Empty continuation lines will become errors in a future release',
        rule: 'NoEmptyContinuation',
        line: currentLine,
      });
    }
    let child: Node;
    try {
      child = newNodeFromLine(line, d, comments);
    } catch (e) {
      return fail((e as Error).message, startLine, currentLine);
    }
    if (canContainHeredoc(child) && line.includes('<<')) {
      let docs: Heredoc[];
      try {
        docs = heredocsFromLine(line);
      } catch (e) {
        const msg = e instanceof ShellExpansionError || e instanceof Error ? e.message : String(e);
        return fail(msg, startLine, currentLine);
      }
      for (const h of docs) {
        let terminated = false;
        for (let b = scan(); b !== null; b = scan()) {
          currentLine++;
          let possible = trimNewline(b);
          if (h.chomp) possible = possible.replace(/^\t+/, '');
          if (possible === h.name) {
            terminated = true;
            break;
          }
          h.content += b;
        }
        if (!terminated) fail('unterminated heredoc', startLine, currentLine);
        child.heredocs.push(h);
      }
    }
    child.startLine = startLine;
    child.endLine = currentLine;
    if (root.startLine < 0) root.startLine = startLine;
    root.endLine = currentLine;
    root.children.push(child);
    comments = [];
  }
  if (root.startLine < 0) fail('file with no instructions', currentLine);
  return { ast: root, directives: d.all, escapeToken: d.escapeToken, warnings };
}

/** The dump BuildKit's tests compare against (`result` files), including the final newline. */
export function dumpAST(r: ParseResult): string {
  return dumpNode(r.ast) + '\n';
}

/**
 * Dockerfile word expansion, following BuildKit's shell lexer (frontend/dockerfile/shell/lex.go):
 * `$v`, `${v}`, `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?m}`, `${v?m}`, `${v#p}`, `${v##p}`,
 * `${v%p}`, `${v%%p}`, `${v/p/r}`, `${v//p/r}`, single and double quotes, the escape character, and
 * word splitting. It is not a shell: there is no command substitution, globbing or arithmetic.
 */
import { TsbuildError } from '../errors/index.js';

export class ShellExpansionError extends TsbuildError {
  constructor(message: string) {
    super('SHELL_EXPANSION', message);
  }
}

export interface LexOptions {
  escapeToken?: string;
  /** Keep quote characters in the output (used to tell quoted heredoc delimiters apart). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Leave quotes unprocessed. */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written. */
  skipUnsetEnv?: boolean;
}

export type Env = ReadonlyMap<string, string> | Record<string, string>;

export interface WordResult {
  result: string;
  words: string[];
  matched: Set<string>;
  unmatched: Set<string>;
}

const EOF = '';

function getEnvValue(env: Env, name: string): string | undefined {
  if (env instanceof Map) return env.get(name);
  const rec = env as Record<string, string>;
  return Object.prototype.hasOwnProperty.call(rec, name) ? rec[name] : undefined;
}

function isSpace(ch: string): boolean {
  return /^\s$/u.test(ch);
}

class Words {
  word = '';
  words: string[] = [];
  inWord = false;
  addChar(ch: string): void {
    if (isSpace(ch) && this.inWord) {
      if (this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else if (!isSpace(ch)) {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class ShellWord {
  private chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  constructor(
    src: string,
    private env: Env,
    private opts: Required<LexOptions>,
  ) {
    this.chars = Array.from(src);
    this.rawEscapes = opts.rawEscapes;
  }
  private peek(): string {
    return this.pos < this.chars.length ? this.chars[this.pos]! : EOF;
  }
  private next(): string {
    return this.pos < this.chars.length ? this.chars[this.pos++]! : EOF;
  }
  private getEnv(name: string): string | undefined {
    const v = getEnvValue(this.env, name);
    if (v !== undefined) this.matched.add(name);
    else this.unmatched.add(name);
    return v;
  }

  process(): { word: string; words: string[] } {
    return this.processStopOn(EOF, this.rawEscapes);
  }

  private processStopOn(stop: string, rawEscapes: boolean): { word: string; words: string[] } {
    let result = '';
    const words = new Words();
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        const ch = this.peek();
        if (stop !== EOF && ch === stop) {
          this.next();
          return { word: result, words: words.getWords() };
        }
        if (ch === '$') {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
        } else if (!this.opts.skipProcessQuotes && (ch === "'" || ch === '"')) {
          const tmp = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else {
          let c = this.next();
          if (c === this.opts.escapeToken) {
            if (this.rawEscapes) {
              words.addRawChar(c);
              result += c;
            }
            c = this.next();
            if (c === EOF) break;
            words.addRawChar(c);
          } else {
            words.addChar(c);
          }
          result += c;
        }
      }
      if (stop !== EOF) {
        throw new ShellExpansionError(`unexpected end of statement while looking for matching ${stop}`);
      }
      return { word: result, words: words.getWords() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    let ch = this.next();
    if (this.opts.rawQuotes) result += ch;
    for (;;) {
      ch = this.next();
      if (ch === EOF) throw new ShellExpansionError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.next();
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new ShellExpansionError('unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        const ch = this.next();
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      if (p === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next();
      if (ch === this.opts.escapeToken) {
        if (this.rawEscapes) result += ch;
        const q = this.peek();
        if (q === EOF) continue;
        if (q === '"' || q === '$' || q === this.opts.escapeToken) {
          if (!this.rawEscapes) ch = this.next();
        }
      }
      result += ch;
    }
  }

  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (name.length === 0 && /^\p{Nd}$/u.test(ch)) {
        while (this.peek() !== EOF && /^\p{Nd}$/u.test(this.peek())) name += this.next();
        return name;
      }
      if (name.length === 0 && '@*#?-$!0'.includes(ch)) {
        return this.next();
      }
      if (!/^[\p{L}\p{Nd}_]$/u.test(ch)) break;
      name += this.next();
    }
    return name;
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '$' + name;
      return value ?? '';
    }
    this.next();
    const p = this.peek();
    if (p === EOF) throw new ShellExpansionError("syntax error: missing '}'");
    if (p === '{' || p === '}' || p === ':') throw new ShellExpansionError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let chs = ch;
    let nullIsUnset = false;
    if (ch === '}') {
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return `\${${name}}`;
      return value ?? '';
    }
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      chs += ch;
    }
    if (ch === '+' || ch === '-' || ch === '?' || ch === '#' || ch === '%') {
      const raw = ch === '#' || ch === '%';
      if (nullIsUnset && raw) throw new ShellExpansionError(`unsupported modifier (${chs}) in substitution`);
      let word: string;
      try {
        word = this.processStopOn('}', raw).word;
      } catch (e) {
        if (this.peek() === EOF) throw new ShellExpansionError("syntax error: missing '}'");
        throw e;
      }
      const value = this.getEnv(name);
      if (this.opts.skipUnsetEnv && value === undefined) return `\${${name}${chs}${word}}`;
      const set = value !== undefined;
      const empty = nullIsUnset && value === '';
      switch (ch) {
        case '-':
          return !set || empty ? word : value!;
        case '+':
          return !set || empty ? '' : word;
        case '?':
          if (!set) throw new ShellExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (empty) throw new ShellExpansionError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return value!;
        default: {
          let greedy = false;
          if (word.length > 0 && word[0] === ch) {
            greedy = true;
            word = word.slice(1);
          }
          return ch === '%' ? trimSuffix(word, value ?? '', greedy) : trimPrefix(word, value ?? '', greedy);
        }
      }
    }
    if (ch === '/' && !nullIsUnset) {
      const replaceAll = this.peek() === '/';
      if (replaceAll) this.next();
      let pattern: string;
      let replacement: string;
      try {
        pattern = this.processStopOn('/', true).word;
        replacement = this.processStopOn('}', true).word;
      } catch (e) {
        if (this.peek() === EOF) throw new ShellExpansionError("syntax error: missing '}'");
        throw e;
      }
      const value = this.getEnv(name);
      if (this.opts.skipUnsetEnv && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
      const re = shellPatternToRegex(pattern, true, false, replaceAll);
      const v = value ?? '';
      if (replaceAll) return v.replace(re, () => replacement);
      const m = re.exec(v);
      if (!m) return v;
      return v.slice(0, m.index) + replacement + v.slice(m.index + m[0].length);
    }
    throw new ShellExpansionError(`unsupported modifier (${chs}) in substitution`);
  }
}

/** Converts a shell glob (`*`, `?`, `\x`) to a RegExp, as BuildKit does for `${v#p}` and friends. */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '[\\s\\S]*' : '[\\s\\S]*?';
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i]!;
    if (tok === '*') {
      out += star;
      continue;
    }
    if (tok === '?') {
      out += '[\\s\\S]';
      continue;
    }
    if (tok === '\\') {
      if (chars[i + 1] === '}') continue;
      const n = chars[++i] ?? '';
      if (/^[\p{L}\p{N}]$/u.test(n) || n === '') {
        throw new ShellExpansionError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n}'`);
      }
      out += n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      continue;
    }
    out += tok.replace(/[[\]{}.+()|^$/]/g, (c) => '\\' + c);
  }
  return new RegExp(out, global ? 'gu' : 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const re = shellPatternToRegex(pattern, greedy, true);
  const m = re.exec(value);
  return m ? value.slice(m[0].length) : value;
}

function reversePattern(pattern: string): string {
  const p = Array.from(pattern);
  const out: string[] = new Array<string>(p.length);
  const last = p.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = p[i]!;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = p[i + 1]!;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // A regex cannot find the shortest rightmost match, so search the reversed string for the reversed
  // pattern, as BuildKit does.
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

function withDefaults(o: LexOptions): Required<LexOptions> {
  return {
    escapeToken: o.escapeToken ?? '\\',
    rawQuotes: o.rawQuotes ?? false,
    rawEscapes: o.rawEscapes ?? false,
    skipProcessQuotes: o.skipProcessQuotes ?? false,
    skipUnsetEnv: o.skipUnsetEnv ?? false,
  };
}

/** Expands one word: the result, with the names of variables it used and those it found unset. */
export function processWord(word: string, env: Env, opts: LexOptions = {}): WordResult {
  const sw = new ShellWord(word, env, withDefaults(opts));
  let r: { word: string; words: string[] };
  try {
    r = sw.process();
  } catch (e) {
    if (e instanceof ShellExpansionError) throw new ShellExpansionError(`failed to process "${word}": ${e.message}`);
    throw e;
  }
  return { result: r.word, words: r.words, matched: sw.matched, unmatched: sw.unmatched };
}

/** Expands and splits into words, as BuildKit's ProcessWords (used by EXPOSE, heredoc detection, …). */
export function processWords(word: string, env: Env, opts: LexOptions = {}): string[] {
  return processWord(word, env, opts).words;
}

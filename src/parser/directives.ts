/**
 * Parser directives: `# syntax=`, `# escape=`, `# check=` at the very top of a Dockerfile. Scanning stops
 * at the first line that is not a directive; unknown keys end the block and are plain comments.
 */
import { TsbuildError } from '../errors/index.js';

export interface Directive {
  name: string;
  value: string;
  line: number;
}

const reDirective = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const reCDirective = /^\/\/[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
export const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);

export class DirectiveError extends TsbuildError {
  constructor(message: string) {
    super('DOCKERFILE_SYNTAX', message);
  }
}

/** Line-by-line scanner, as BuildKit's DirectiveParser: feed lines until it says it is done. */
export class DirectiveScanner {
  done = false;
  private seen = new Set<string>();
  readonly directives: Directive[] = [];
  private lineNo = 0;
  constructor(private cStyle = false) {}

  /** Returns the directive on this line, or null. Throws on a repeated directive. */
  parseLine(line: string): Directive | null {
    this.lineNo++;
    if (this.done) return null;
    const m = (this.cStyle ? reCDirective : reDirective).exec(line);
    if (!m) {
      this.done = true;
      return null;
    }
    const key = m[1]!.toLowerCase();
    if (!KNOWN_DIRECTIVES.has(key)) {
      this.done = true;
      return null;
    }
    if (this.seen.has(key)) throw new DirectiveError(`only one ${key} parser directive can be used`);
    this.seen.add(key);
    const d = { name: key, value: m[2]!, line: this.lineNo };
    this.directives.push(d);
    return d;
  }
}

function stripBOM(s: string): string {
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

export interface DetectedDirective {
  ref: string;
  cmdline: string;
  line: number;
}

function scanFor(key: string, text: string, cStyle: boolean): DetectedDirective | null {
  const lines = stripBOM(text).split(/\r?\n/);
  const scanner = new DirectiveScanner(cStyle);
  let i = 0;
  if (lines[0]?.startsWith('#!')) {
    scanner.parseLine('');
    scanner.done = false;
    i = 1;
  }
  for (; i < lines.length; i++) {
    let d: Directive | null;
    try {
      d = scanner.parseLine(lines[i]!);
    } catch {
      return null;
    }
    if (scanner.done) break;
    if (d && d.name === key) {
      const ref = d.value.split(' ')[0]!;
      return { ref, cmdline: d.value, line: i + 1 };
    }
  }
  return null;
}

/** Finds the frontend named by `# syntax=`, `//syntax=` or a JSON object's "syntax" key. */
export function detectSyntax(text: string): DetectedDirective | null {
  const found = scanFor('syntax', text, false) ?? scanFor('syntax', text, true);
  if (found) return found;
  try {
    const obj: unknown = JSON.parse(stripBOM(text));
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
      const s = (obj as Record<string, unknown>)['syntax'];
      if (typeof s === 'string') return { ref: s.split(' ')[0]!, cmdline: s, line: 1 };
    }
  } catch {
    // not JSON: no syntax directive
  }
  return null;
}

/** `# check=` and other `#`-only directives. */
export function parseDirective(key: string, text: string): DetectedDirective | null {
  return scanFor(key, text, false);
}

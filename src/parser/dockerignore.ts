/**
 * `.dockerignore` reading and matching, with the rules of moby/patternmatcher: patterns are cleaned
 * paths relative to the context root, `!` re-includes, the last matching pattern wins, `**` spans any
 * number of directories, and a pattern that matches a directory excludes everything under it.
 */
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';

export class DockerignoreError extends TsbuildError {
  constructor(message: string) {
    super('DOCKERIGNORE', message);
  }
}

interface Pattern {
  text: string;
  exclusion: boolean;
  re: RegExp;
  dirs: number;
}

function compile(p: string): RegExp {
  let re = '^';
  const chars = Array.from(p);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        while (chars[i + 1] === '/') i++;
        re += i + 1 >= chars.length ? '.*' : '(?:.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      const n = chars[++i];
      if (n === undefined) throw new DockerignoreError(`invalid .dockerignore pattern ${JSON.stringify(p)}: trailing backslash`);
      re += n.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else if (ch === '[') {
      const end = chars.indexOf(']', i + 1);
      if (end < 0) throw new DockerignoreError(`invalid .dockerignore pattern ${JSON.stringify(p)}: unterminated [`);
      let cls = chars.slice(i + 1, end).join('');
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += '[' + cls.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else {
      re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(re + '$', 'su');
}

function clean(p: string): string {
  let c = path.posix.normalize(p.replace(/\\(?=[^*?[\\])/g, '\\'));
  c = c.replace(/^(\.\.\/)+/, '').replace(/^\/+/, '');
  if (c === '.' || c === '..') return '.';
  return c.replace(/\/$/, '');
}

/** Parses `.dockerignore` text into patterns. Comments (`#`) and blank lines are skipped. */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  for (let line of text.replace(/^\ufeff/, '').split(/\r?\n/)) {
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    let excl = false;
    if (line.startsWith('!')) {
      excl = true;
      line = line.slice(1).trim();
      if (line === '') throw new DockerignoreError('illegal exclusion pattern: "!" in .dockerignore: a "!" must be followed by a pattern');
    }
    const c = clean(line);
    out.push((excl ? '!' : '') + c);
  }
  return out;
}

export class IgnoreMatcher {
  private patterns: Pattern[];
  constructor(patterns: string[]) {
    this.patterns = patterns.map((t) => {
      const exclusion = t.startsWith('!');
      const text = exclusion ? t.slice(1) : t;
      if (text === '') throw new DockerignoreError('illegal exclusion pattern: "!"');
      return { text, exclusion, re: compile(text), dirs: text.split('/').length };
    });
  }
  get empty(): boolean {
    return this.patterns.length === 0;
  }
  /** True when `rel` (a slash-separated path relative to the context) is excluded. */
  matches(rel: string): boolean {
    const parts = rel.split('/');
    let matched = false;
    for (const p of this.patterns) {
      if (p.exclusion && !matched) continue;
      let m = p.re.test(rel);
      if (!m) {
        // A pattern matching a parent directory excludes its contents.
        for (let i = 1; i < parts.length && !m; i++) m = p.re.test(parts.slice(0, i).join('/'));
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }
  /**
   * Whether a directory might contain re-included files even though it is excluded itself; if not,
   * the walk can skip it entirely.
   */
  mayReinclude(dir: string): boolean {
    return this.patterns.some((p) => p.exclusion && (p.text.startsWith(dir + '/') || p.text.includes('*')));
  }
}

/** `<Dockerfile>.dockerignore` next to the Dockerfile wins over the context's `.dockerignore`. */
export function dockerignoreCandidates(dockerfilePath: string, contextDir: string): string[] {
  return [dockerfilePath + '.dockerignore', path.join(contextDir, '.dockerignore')];
}

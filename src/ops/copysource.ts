/**
 * What a COPY/ADD reads: its sources cleaned and expanded (globs, .dockerignore, --exclude) inside
 * the source root, and the cache material of what it would read from the context.
 */
import fs from 'node:fs';
import path from 'node:path';
import { resolveInRoot } from '../fsutil/index.js';
import { IgnoreMatcher } from '../parser/index.js';
import { entryChecksum, type ChecksumMemo } from '../cache/index.js';
import { TsbuildError } from '../errors/index.js';
import type { OpSpec } from './types.js';

export class CopyError extends TsbuildError {
  constructor(message: string) {
    super('COPY_FAILED', message);
  }
}

export const GLOB = /[*?[]/;

function globToRegExp(pat: string): RegExp {
  let re = '^';
  for (let i = 0; i < pat.length; i++) {
    const c = pat[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pat.indexOf(']', i + 1);
      if (end < 0) throw new CopyError(`invalid source pattern ${pat}: unterminated [`);
      let cls = pat.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += '[' + cls.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else if (c === '\\' && i + 1 < pat.length) re += '\\' + pat[++i];
    else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

/** Where a source path is resolved, for messages: the build context, or a stage's or image's files. */
const SOURCES = 'in the COPY/ADD sources (the build context or --from)';

/** Relative paths (slash-separated, "" = root) matching a cleaned source pattern. */
export function expandSource(srcRoot: string, rel: string, ignored: (rel: string) => boolean): string[] {
  if (!GLOB.test(rel)) {
    if (rel !== '' && ignored(rel)) return [];
    const host = resolveInRoot(srcRoot, rel, true, SOURCES);
    return fs.existsSync(host) || isLink(host) ? [rel] : [];
  }
  let current = [''];
  for (const part of rel.split('/')) {
    const next: string[] = [];
    for (const base of current) {
      if (!GLOB.test(part)) {
        const p = base === '' ? part : `${base}/${part}`;
        if (fs.existsSync(resolveInRoot(srcRoot, p, true, SOURCES))) next.push(p);
        continue;
      }
      const re = globToRegExp(part);
      let names: string[] = [];
      try {
        names = fs.readdirSync(resolveInRoot(srcRoot, base, true, SOURCES)).sort();
      } catch {
        continue;
      }
      for (const n of names) {
        if (!re.test(n)) continue;
        if (n.includes('\uFFFD') && !fs.existsSync(path.join(resolveInRoot(srcRoot, base, true, SOURCES), n))) {
          throw new CopyError(`the file name ${JSON.stringify(n)} in ${base === '' ? 'the source root' : base} is not UTF-8, so a source pattern cannot name it: copy the directory that holds it (its entries are copied byte for byte), or list it in .dockerignore`);
        }
        next.push(base === '' ? n : `${base}/${n}`);
      }
    }
    current = next;
  }
  return current.filter((p) => !ignored(p));
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

export function cleanSource(s: string): string {
  const n = path.posix.normalize('/' + s.replace(/\/+$/, ''));
  return n === '/' ? '' : n.slice(1);
}

export const isURL = (s: string) => /^https?:\/\//i.test(s);

/** With --parents, the part of a matched path kept under the destination (after a `./` marker). */
/** A host path: text, or bytes once a name on the way is not UTF-8. */
export type HostPath = string | Buffer;

/**
 * The entries of a source directory. A name that is not UTF-8 cannot be reached through a text path
 * (Node shows its bytes as U+FFFD), so such a name is kept as bytes (`raw`) and joined as bytes; `name`
 * is its text form for .dockerignore matching and messages.
 */
export function sourceEntries(dir: HostPath): { name: string; raw?: Buffer }[] {
  // Sorted by the names' bytes, as they were read (not re-encoded on every comparison).
  return (fs.readdirSync(dir, { encoding: 'buffer' }) as Buffer[])
    .sort(Buffer.compare)
    .map((b) => {
      const name = b.toString('utf8');
      return Buffer.from(name).equals(b) ? { name } : { name, raw: b };
    });
}

/**
 * `dir/name`, as text while both are text, else as bytes. A directory entry's name has no slash and is
 * never `.` or `..`, so a normal directory path and the name are joined as they are: path.join's
 * normalizing of the whole path was 108 ms of an edit of 20,000 files (two walks of every name).
 */
export function joinHost(dir: HostPath, e: { name: string; raw?: Buffer }): HostPath {
  if (typeof dir === 'string' && !e.raw) {
    if (dir.length > 1 && dir[0] === '/' && !dir.endsWith('/') && !dir.includes('//') && !dir.includes('/.')) return `${dir}/${e.name}`;
    return path.join(dir, e.name);
  }
  return Buffer.concat([typeof dir === 'string' ? Buffer.from(dir) : dir, Buffer.from('/'), e.raw ?? Buffer.from(e.name)]);
}

export function keptPath(source: string, rel: string): string {
  const marker = source.replace(/^\/+/, '').indexOf('/./');
  if (marker < 0) return rel;
  const prefix = path.posix.normalize(source.replace(/^\/+/, '').slice(0, marker));
  return rel.startsWith(prefix + '/') ? rel.slice(prefix.length + 1) : rel;
}

/**
 * The cache material of a COPY/ADD from the context: one `file:<path>` entry per file, directory and
 * symlink it would read (after .dockerignore and --exclude), by content and metadata, never mtime.
 * `times`, when given, gets each regular file's mtime in whole milliseconds by the same keys: not
 * part of the key, but what a COPY written on its last result compares (copyreuse.ts).
 */
export function contextMaterial(op: Pick<Extract<OpSpec, { kind: 'copy' }>, 'sources' | 'excludes' | 'verb'>, dir: string, ignorePatterns: string[], memo: ChecksumMemo, times?: Record<string, number>): Record<string, string> {
  const ignore = ignorePatterns.length ? new IgnoreMatcher(ignorePatterns) : undefined;
  const excludes = op.excludes.length ? new IgnoreMatcher(op.excludes) : undefined;
  const out: Record<string, string> = {};
  const skip = (rel: string, base: string) =>
    (ignore?.matches(rel) ?? false) || (excludes !== undefined && (excludes.matches(rel) || (base !== '' && rel.startsWith(base + '/') && excludes.matches(rel.slice(base.length + 1)))));
  const mtime = { ms: NaN };
  const walk = (host: HostPath, rel: string, key: string, base: string) => {
    mtime.ms = NaN;
    const sum = entryChecksum(host, memo, times && mtime);
    const k = `file:${key === '' ? '.' : key}`;
    out[k] = sum;
    if (times && !Number.isNaN(mtime.ms)) times[k] = mtime.ms;
    // The checksum says what the entry is ('d' for a directory): a second lstat per entry was a fifth
    // of a no-change build of a 20,000-file context.
    if (!sum.startsWith('d ')) return;
    for (const e of sourceEntries(host)) {
      const child = rel === '' ? e.name : `${rel}/${e.name}`;
      if (skip(child, base)) continue;
      // A name that is not UTF-8 is keyed by its bytes (NUL cannot be in a name: no key collides).
      const part = e.raw ? `\0${e.raw.toString('hex')}` : e.name;
      walk(joinHost(host, e), child, key === '' ? part : `${key}/${part}`, base);
    }
  };
  for (const s of op.sources) {
    if (op.verb === 'ADD' && isURL(s)) continue;
    const rel = cleanSource(s);
    for (const m of expandSource(dir, rel, (r) => skip(r, '') || (excludes !== undefined && excludes.matches(path.posix.basename(r))))) {
      const host = m === '' ? dir : resolveInRoot(dir, m, true, SOURCES);
      if (!fs.existsSync(host)) continue;
      const st = fs.statSync(host);
      const base = st.isDirectory() ? m : '';
      if (host !== path.join(dir, m)) out[`file:${m}`] = `-> ${path.relative(dir, host)}`;
      walk(host, m, m, base);
    }
  }
  return out;
}


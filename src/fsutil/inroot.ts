/**
 * Path resolution inside an image root: every symlink is resolved as if `root` were `/`, so a symlink in
 * an image pointing at `/etc` means the image's /etc and `..` never climbs out. Used on every write that
 * COPY, ADD and WORKDIR make.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError, errnoCode } from '../errors/index.js';

const MAX_LINKS = 255;

/**
 * How path strings reach the filesystem: as UTF-8 text (the default), or as latin1 strings that stand for
 * bytes (`BYTE_PATHS`), for names from archives and layers that need not be UTF-8.
 */
export interface PathCodec {
  fs(p: string): string | Buffer;
  readlink(p: string): string;
}
export const UTF8_PATHS: PathCodec = { fs: (p) => p, readlink: (p) => fs.readlinkSync(p) };
export const BYTE_PATHS: PathCodec = { fs: (p) => Buffer.from(p, 'latin1'), readlink: (p) => fs.readlinkSync(Buffer.from(p, 'latin1'), { encoding: 'buffer' }).toString('latin1') };

/**
 * Returns the host path for `p` (absolute inside the image) with all symlinks in it resolved inside
 * `root`. The last component is followed too unless `followLast` is false. Missing components are fine:
 * the rest of the path is appended as is.
 */
export function resolveInRoot(root: string, p: string, followLast = true, where = 'in the image', c: PathCodec = UTF8_PATHS): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = path.join(root, ...resolved, part);
    const isLast = parts.length === 0;
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(c.fs(candidate));
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTDIR') throw e;
    }
    if (st?.isSymbolicLink() && (!isLast || followLast)) {
      if (++links > MAX_LINKS) throw new TsbuildError('PATH_LOOP', `too many levels of symbolic links resolving ${p} ${where}: a symlink loop`);
      const target = c.readlink(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      parts.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
      continue;
    }
    resolved.push(part);
  }
  return path.join(root, ...resolved);
}

/** mkdir -p inside the root, never following a symlink out of it. Returns the host path. */
export function mkdirInRoot(root: string, p: string, mode = 0o755, owner?: { uid: number; gid: number }, c: PathCodec = UTF8_PATHS): string {
  const parts = p.split('/').filter((x) => x !== '' && x !== '.');
  let cur = '/';
  for (const part of parts) {
    cur = path.posix.join(cur, part);
    const host = resolveInRoot(root, cur, true, 'in the image', c);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(c.fs(host));
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
    }
    if (!st) {
      // The resolved path may run through a symlink whose target's parents do not exist yet; none of
      // the missing part can be a symlink, so creating it top-down is safe.
      const missing: string[] = [];
      for (let p = host; p.startsWith(root + '/') && !fs.existsSync(c.fs(p)); p = path.dirname(p)) missing.unshift(p);
      for (const p of missing) {
        fs.mkdirSync(c.fs(p), { mode });
        fs.chmodSync(c.fs(p), mode);
        if (owner) fs.chownSync(c.fs(p), owner.uid, owner.gid);
      }
    } else if (!st.isDirectory()) {
      throw new TsbuildError('NOT_A_DIRECTORY', `cannot create directory ${p} in the image: ${cur} exists and is not a directory`);
    }
  }
  return resolveInRoot(root, p, true, 'in the image', c);
}

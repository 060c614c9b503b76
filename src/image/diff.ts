/**
 * Layer diff from an overlay upperdir: the upperdir already holds exactly the changes, so the layer is a
 * walk of it, with overlay's whiteouts (0/0 character devices) turned into OCI `.wh.<name>` entries and
 * opaque directories into `.wh..wh..opq` (image-spec layer.md "Whiteouts"). Emitted as a stream of tar
 * blocks in sorted path order; file contents are streamed, never held whole.
 */
import fs from 'node:fs';
import path from 'node:path';
import { encodeHeader, padding, END_OF_ARCHIVE, type TarHeader } from './tar.js';

export interface DiffOptions {
  /** Relative paths (no leading slash) of directories overlay marked opaque. */
  opaqueDirs: Set<string>;
  /** Clamp every mtime to at most this (seconds), for reproducible layers. */
  sourceDateEpoch?: number;
  /** Extended attributes by relative path (read by the caller; Node cannot). */
  xattrs?: Map<string, Record<string, Buffer>>;
}

const SMALL_FILE = 256 * 1024;

export interface DiffStats {
  entries: number;
}

function major(rdev: number): number {
  return Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
}
function minor(rdev: number): number {
  return Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);
}

function sortedNames(dir: string): string[] {
  // Byte order, as Go's sort.Strings does, so layers are identical to other tools' for the same tree.
  return fs.readdirSync(dir).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/**
 * The tar blocks of one non-directory entry, shared by both differs: a symlink, a file (a hard link
 * to its first path when already emitted; content streamed, or read in one call when small), a
 * device node or a fifo. Sockets are not representable in tar and are skipped, as Docker does.
 */
export async function* entryBlocks(base: Omit<TarHeader, 'type'>, full: string, st: fs.Stats, links: Map<string, string>): AsyncGenerator<Buffer> {
  if (st.isSymbolicLink()) {
    yield encodeHeader({ ...base, type: 'symlink', linkname: fs.readlinkSync(full) });
  } else if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(key) : undefined;
    if (first !== undefined) {
      yield encodeHeader({ ...base, type: 'hardlink', linkname: first });
      return;
    }
    if (st.nlink > 1) links.set(key, base.name);
    yield encodeHeader({ ...base, type: 'file', size: st.size });
    if (st.size <= SMALL_FILE) {
      // One read for small files: far cheaper than a stream's open/read/close round trips.
      const data = fs.readFileSync(full);
      if (data.length !== st.size) throw new Error(`${base.name} changed size while its layer was being written`);
      yield data;
      yield padding(st.size);
      return;
    }
    let written = 0;
    for await (const chunk of fs.createReadStream(full, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      const take = Math.min(chunk.length, st.size - written);
      if (take > 0) yield take === chunk.length ? chunk : chunk.subarray(0, take);
      written += take;
    }
    if (written < st.size) yield Buffer.alloc(st.size - written);
    yield padding(st.size);
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    yield encodeHeader({ ...base, type: st.isCharacterDevice() ? 'char' : 'block', devmajor: major(st.rdev), devminor: minor(st.rdev) });
  } else if (st.isFIFO()) {
    yield encodeHeader({ ...base, type: 'fifo' });
  }
}

export async function* diffUpperDir(upper: string, opts: DiffOptions, stats: DiffStats = { entries: 0 }): AsyncGenerator<Buffer> {
  const links = new Map<string, string>();
  const clamp = (t: number) => (opts.sourceDateEpoch !== undefined ? Math.min(t, opts.sourceDateEpoch) : t);
  async function* walk(rel: string): AsyncGenerator<Buffer> {
    const dir = path.join(upper, rel);
    for (const name of sortedNames(dir)) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const full = path.join(dir, name);
      const st = fs.lstatSync(full);
      const mtime = clamp(Math.floor(st.mtimeMs / 1000));
      const base: Omit<TarHeader, 'type'> = { name: relPath, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime, xattrs: opts.xattrs?.get(relPath) };
      stats.entries++;
      if (st.isCharacterDevice() && st.rdev === 0) {
        const wh = rel === '' ? `.wh.${name}` : `${rel}/.wh.${name}`;
        yield encodeHeader({ ...base, name: wh, type: 'file', mode: 0o644, uid: 0, gid: 0, xattrs: undefined });
      } else if (st.isDirectory()) {
        yield encodeHeader({ ...base, type: 'dir' });
        if (opts.opaqueDirs.has(relPath)) {
          yield encodeHeader({ ...base, name: `${relPath}/.wh..wh..opq`, type: 'file', mode: 0o644, uid: 0, gid: 0, xattrs: undefined });
        }
        yield* walk(relPath);
      } else {
        yield* entryBlocks(base, full, st, links);
      }
    }
  }
  yield* walk('');
  yield END_OF_ARCHIVE;
}

/**
 * Layer entries: the tar blocks of one entry, shared by the differ (treediff.ts) and by layers made
 * from a directory of new files (`diffUpperDir` without a lower: COPY --link, cache exports).
 */
import fs from 'node:fs';
import { encodeHeader, padding, padLength, type TarHeader } from './tar.js';
import { diffTrees, type EntryStat, type UpperDir, type XattrMap } from './treediff.js';
import type { LayerSplice } from './tarsplice.js';

export interface DiffOptions {
  /** Relative paths (no leading slash) of directories overlay marked opaque. */
  opaqueDirs: Set<string>;
  /** Clamp every mtime to at most this (seconds), for reproducible layers. */
  sourceDateEpoch?: number;
  /** Extended attributes by relative path (read by the caller; Node cannot). */
  xattrs?: XattrMap;
  /** The parent's tree (a read-only view of it) and its xattrs, which the upperdir's entries are compared with. */
  lower?: { dir: string; xattrs: XattrMap };
  /** More upperdirs under `upper` whose changes join this layer (treediff.ts), top first. */
  below?: UpperDir[];
  /** Content of the stack's upperdir `layer` read from an earlier layer where it is the same (treediff.ts). */
  splice?: { layer: number; from: LayerSplice };
}

const SMALL_FILE = 256 * 1024;

function major(rdev: number): number {
  return Number((BigInt(rdev) >> 8n) & 0xfffn) | Number((BigInt(rdev) >> 32n) & ~0xfffn);
}
function minor(rdev: number): number {
  return Number(BigInt(rdev) & 0xffn) | Number((BigInt(rdev) >> 12n) & ~0xffn);
}

/**
 * The tar blocks of one non-directory entry, shared by both differs: a symlink, a file (a hard link
 * to its first path when already emitted; content streamed, or read in one call when small), a
 * device node or a fifo. Sockets are not representable in tar and are skipped, as Docker does.
 */
export async function* entryBlocks(base: Omit<TarHeader, 'type'>, full: Buffer, st: EntryStat, links: Map<string, string | Buffer>): AsyncGenerator<Buffer> {
  if (st.isSymbolicLink()) {
    yield encodeHeader({ ...base, type: 'symlink', linkname: fs.readlinkSync(full, { encoding: 'buffer' }) });
  } else if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? links.get(key) : undefined;
    if (first !== undefined) {
      yield encodeHeader({ ...base, type: 'hardlink', linkname: first });
      return;
    }
    if (st.nlink > 1) links.set(key, base.name);
    const header = encodeHeader({ ...base, type: 'file', size: st.size });
    if (st.size <= SMALL_FILE) {
      // Header, content and padding as one piece, the content read straight into it: a layer of
      // 20,000 small files paid an fstat and a buffer per file (readFileSync) and three yields.
      yield smallFile(header, full, st.size, base.name);
      return;
    }
    yield header;
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

/**
 * A small file's tar blocks in one buffer. One byte more than the size is asked for, so a file that
 * grew since it was stat'ed is caught as one that shrank is.
 */
function smallFile(header: Buffer, full: Buffer, size: number, name: string | Buffer): Buffer {
  const padded = size + padLength(size);
  const out = Buffer.allocUnsafe(header.length + padded + 1);
  header.copy(out, 0);
  const fd = fs.openSync(full, 'r');
  let got = 0;
  try {
    for (;;) {
      const n = fs.readSync(fd, out, header.length + got, size + 1 - got, null);
      if (n === 0) break;
      got += n;
      if (got > size) break;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (got !== size) throw new Error(`${String(name)} changed size while its layer was being written`);
  out.fill(0, header.length + size);
  return out.subarray(0, header.length + padded);
}

/** The layer of an overlay upperdir: its changes against `lower` (or, without one, all of it). */
export function diffUpperDir(upper: string, opts: DiffOptions): AsyncGenerator<Buffer> {
  return diffTrees(opts.lower?.dir, upper, {
    sourceDateEpoch: opts.sourceDateEpoch,
    overlay: { opaque: opts.opaqueDirs, below: opts.below },
    splice: opts.splice,
    xattrs: { lower: opts.lower?.xattrs, upper: opts.xattrs ?? new Map() },
  });
}

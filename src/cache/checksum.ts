/**
 * Content checksums of what a step reads: type, mode, uid, gid, size, link target and content; never
 * mtime, so touching a file is not a change. A stat-keyed memo (inode, size, mtime, ctime) lets a warm
 * rebuild skip re-reading unchanged files; a changed stat only means "read it again", never "changed".
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readJSONFile, writeFileAtomic } from '../fsutil/index.js';

interface MemoEntry {
  k: string;
  d: string;
}

export class ChecksumMemo {
  private entries = new Map<string, MemoEntry>();
  private dirty = false;
  readonly stats = { hashed: 0, memoHits: 0 };
  constructor(private file?: string) {
    if (file) {
      // A memo is only a shortcut: a damaged one is started afresh (and rewritten after the build).
      let data: Record<string, MemoEntry> = {};
      try {
        data = readJSONFile<Record<string, MemoEntry>>(file, {});
      } catch {
        this.dirty = true;
      }
      for (const [p, e] of Object.entries(data)) this.entries.set(p, e);
    }
  }
  private static statKey(st: fs.BigIntStats): string {
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}:${st.uid}:${st.gid}`;
  }
  /** Content digest of a regular file, from the memo when its stat is unchanged. */
  fileDigest(p: string, st: fs.BigIntStats): string {
    const k = ChecksumMemo.statKey(st);
    const e = this.entries.get(p);
    if (e && e.k === k) {
      this.stats.memoHits++;
      return e.d;
    }
    const h = crypto.createHash('sha256');
    const fd = fs.openSync(p, 'r');
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) h.update(buf.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
    const d = h.digest('hex');
    this.stats.hashed++;
    this.entries.set(p, { k, d });
    this.dirty = true;
    return d;
  }
  save(): void {
    if (!this.file || !this.dirty) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    writeFileAtomic(this.file, JSON.stringify(Object.fromEntries(this.entries)));
    this.dirty = false;
  }
}

/** One entry's checksum: metadata and, for files, content; symlinks by their target. */
export function entryChecksum(p: string, memo: ChecksumMemo): string {
  const st = fs.lstatSync(p, { bigint: true });
  const meta = `${st.mode.toString(8)} ${st.uid} ${st.gid}`;
  if (st.isSymbolicLink()) return `l ${meta} ${fs.readlinkSync(p)}`;
  if (st.isDirectory()) return `d ${meta}`;
  if (st.isFile()) return `f ${meta} ${st.size} ${memo.fileDigest(p, st)}`;
  return `o ${meta} ${st.rdev}`;
}

export function digestOf(material: Record<string, string>): string {
  const h = crypto.createHash('sha256');
  for (const k of Object.keys(material).sort()) h.update(`${k}\0${material[k]}\0`);
  return 'sha256:' + h.digest('hex');
}

/**
 * Content checksums of what a step reads: type, mode, uid, gid, size, link target and content; never
 * mtime, so touching a file is not a change. A stat-keyed memo (inode, size, mtime, ctime) lets a warm
 * rebuild skip re-reading unchanged files; a changed stat only means "read it again", never "changed".
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeAllSync, writeFileAtomicChunks } from '../fsutil/index.js';

/** Records of the memo file: `path NUL statKey NUL digest NUL`, after this first line. */
const MEMO_HEADER = 'tsbuild-checksums 1\n';
const STAT_KEY = /^\d+(:\d+){7}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** A memo entry (`statKey digest`) as the three fields of its record. */
function pushRecord(part: string[], p: string, e: string): void {
  const sp = e.indexOf(' ');
  part.push(p, e.slice(0, sp), e.slice(sp + 1));
}

/**
 * The memo holds one record per file of every context it has seen, so it is kept small: each entry
 * is one flat string (`statKey digest`), and it is read and written record by record rather than as
 * one JSON document (which doubled the peak memory of a build with a 100,000-file context).
 */
export class ChecksumMemo {
  private entries = new Map<string, string>();
  private dirty = false;
  /**
   * Records the file holds (superseded ones too) when it was read whole and intact, else undefined:
   * while it is known, the changes of a build are appended instead of rewriting every record (a
   * one-file edit of a 20,000-file context rewrote 1.5 MB, 55-90 ms). Later records win when read.
   */
  private onDisk: number | undefined;
  private readonly changed = new Set<string>();
  readonly stats = { hashed: 0, memoHits: 0 };
  constructor(private file?: string) {
    if (file) this.load(file);
  }
  private load(file: string): void {
    let raw: Buffer;
    try {
      raw = fs.readFileSync(file);
    } catch {
      return;
    }
    // A memo is only a shortcut: a damaged one keeps what parsed before the damage and is rewritten.
    if (!raw.subarray(0, MEMO_HEADER.length).equals(Buffer.from(MEMO_HEADER))) {
      this.dirty = true;
      return;
    }
    let pos = MEMO_HEADER.length;
    const field = (): string | undefined => {
      const z = raw.indexOf(0, pos);
      if (z < 0) return undefined;
      const f = raw.toString('utf8', pos, z);
      pos = z + 1;
      return f;
    };
    let records = 0;
    while (pos < raw.length) {
      const p = field();
      const k = field();
      const d = field();
      if (p === undefined || k === undefined || d === undefined || !STAT_KEY.test(k) || !HEX64.test(d)) {
        this.dirty = true;
        return;
      }
      this.entries.set(p, [k, d].join(' '));
      records++;
    }
    this.onDisk = records;
  }
  // Array join gives one flat string; a template literal gives a tree of rope nodes that the memo would
  // keep for every file (about 300 bytes each, 30 MB for a 100,000-file context).
  private static statKey(st: fs.BigIntStats): string {
    return [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs, st.mode, st.uid, st.gid].join(':');
  }
  /** Content digest of a regular file, from the memo when its stat is unchanged. */
  fileDigest(p: string | Buffer, st: fs.BigIntStats): string {
    const k = ChecksumMemo.statKey(st);
    // A path that is not UTF-8 is remembered by its bytes (no absolute text path starts with '#').
    const key = typeof p === 'string' ? p : `#${p.toString('hex')}`;
    const e = this.entries.get(key);
    if (e !== undefined && e.length === k.length + 65 && e.startsWith(k) && e[k.length] === ' ') {
      this.stats.memoHits++;
      return e.slice(k.length + 1);
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
    this.entries.set(key, [k, d].join(' '));
    this.changed.add(key);
    this.dirty = true;
    return d;
  }
  save(): void {
    if (!this.file || !this.dirty) return;
    // Appended while the file would hold at most half as many records again as are live (a reader
    // parses them all); past that, rewritten whole.
    if (this.onDisk !== undefined && this.onDisk + this.changed.size <= 1.5 * this.entries.size + 1024 && this.append(this.file)) return;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const entries = this.entries;
    function* chunks(): Generator<string> {
      yield MEMO_HEADER;
      let part: string[] = [];
      for (const [p, e] of entries) {
        pushRecord(part, p, e);
        if (part.length >= 3 * 2048) {
          yield part.join('\0') + '\0';
          part = [];
        }
      }
      if (part.length) yield part.join('\0') + '\0';
    }
    // A cache of digests: a power loss at worst costs hashing again, so no fsync.
    writeFileAtomicChunks(this.file, chunks(), { sync: false });
    this.dirty = false;
    this.onDisk = entries.size;
    this.changed.clear();
  }
  /**
   * The changed records at the end of the file, in one write. A write cut short (a crash, a full disk)
   * leaves a damaged tail, which the next reader drops and rewrites; another build's rewrite in the
   * meantime (a rename) takes the appended records with the old file: hashed again, never wrong.
   */
  private append(file: string): boolean {
    const part: string[] = [];
    for (const key of this.changed) pushRecord(part, key, this.entries.get(key)!);
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    } catch {
      return false;
    }
    try {
      writeAllSync(fd, Buffer.from(part.join('\0') + '\0'));
    } catch {
      return false;
    } finally {
      fs.closeSync(fd);
    }
    this.onDisk! += this.changed.size;
    this.changed.clear();
    this.dirty = false;
    return true;
  }
}

/**
 * The memos of the build contexts a store has seen, one file each (`<dir>/<digest of the context's
 * path>.memo`), each loaded when a build first reads its context: a build reads and rewrites only
 * the records of its own contexts. With one memo for the whole store, every build loaded, and every
 * build that changed a file rewrote, the records of every other context: 60 ms to load and 70 ms to
 * save 20,000 records of another project, in each small project's rebuild.
 */
export class ChecksumMemos {
  private memos = new Map<string, ChecksumMemo>();
  private transient: Set<string>;
  /**
   * `dir`: where the memo files go (none: kept in memory only). `transient`: contexts removed after
   * the build (`build -`), whose records would never be read again.
   */
  constructor(private dir?: string, transient: string[] = []) {
    this.transient = new Set(transient.map((t) => path.resolve(t)));
  }
  /** The memo of the context at `contextDir`. */
  forContext(contextDir: string): ChecksumMemo {
    const key = path.resolve(contextDir);
    let m = this.memos.get(key);
    if (!m) {
      const keep = this.dir !== undefined && !this.transient.has(key);
      m = new ChecksumMemo(keep ? path.join(this.dir!, `${crypto.createHash('sha256').update(key).digest('hex').slice(0, 32)}.memo`) : undefined);
      this.memos.set(key, m);
    }
    return m;
  }
  get stats(): { hashed: number; memoHits: number } {
    let hashed = 0, memoHits = 0;
    for (const m of this.memos.values()) {
      hashed += m.stats.hashed;
      memoHits += m.stats.memoHits;
    }
    return { hashed, memoHits };
  }
  save(): void {
    for (const m of this.memos.values()) m.save();
    if (!this.dir) return;
    // The store-wide memo of earlier versions (and its JSON form before that), superseded.
    const cacheDir = path.dirname(this.dir);
    for (const old of ['checksums.memo', 'checksums.json']) fs.rmSync(path.join(cacheDir, old), { force: true });
  }
}

/** Bytes as text when they are UTF-8, else as NUL and hex (which no text can be). */
function text(b: Buffer): string {
  const t = b.toString('utf8');
  return Buffer.from(t).equals(b) ? t : `\0${b.toString('hex')}`;
}

/**
 * A time as Node's lstat gives it in milliseconds (`mtimeMs`: seconds times 1000 plus nanoseconds
 * over a million, in doubles), from the nanoseconds of the bigint lstat: the same double, bit for bit.
 */
function msOf(ns: bigint): number {
  let sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += 1_000_000_000n;
  }
  return Number(sec) * 1000 + Number(nsec) / 1e6;
}

/**
 * One entry's checksum: metadata and, for files, content; symlinks by their target. It starts with the entry's kind and a space (`d `, `f `, `l `, `o `), which walkers use instead of another lstat.
 * `mtime`, when given, gets a regular file's mtime in whole milliseconds (the Date Node's lstat would give).
 */
export function entryChecksum(p: string | Buffer, memo: ChecksumMemo, mtime?: { ms: number }): string {
  const st = fs.lstatSync(p, { bigint: true });
  if (mtime && st.isFile()) mtime.ms = Math.round(msOf(st.mtimeNs));
  // Joined, not templated: one flat string per entry, as the memo's keys (a build holds one per file).
  const meta = [st.mode.toString(8), st.uid, st.gid];
  if (st.isSymbolicLink()) return ['l', ...meta, text(fs.readlinkSync(p, { encoding: 'buffer' }))].join(' ');
  if (st.isDirectory()) return ['d', ...meta].join(' ');
  if (st.isFile()) return ['f', ...meta, st.size, memo.fileDigest(p, st)].join(' ');
  return ['o', ...meta, st.rdev].join(' ');
}

export function digestOf(material: Record<string, string>): string {
  const h = crypto.createHash('sha256');
  for (const k of Object.keys(material).sort()) h.update(`${k}\0${material[k]}\0`);
  return 'sha256:' + h.digest('hex');
}

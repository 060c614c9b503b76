/**
 * The cache index: one JSON record per cache key under `<store>/cache/records/`, written atomically,
 * so concurrent builds share results without a global lock and a kill -9 leaves whole records only.
 * Each step also remembers the material of its last key (`cache/steps/`), which is how a miss says
 * what changed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readJSONFile, writeFileAtomic } from '../fsutil/index.js';
import type { Descriptor } from '../image/index.js';

export interface CacheRecord {
  key: string;
  /** Committed snapshot holding the step's result; absent for a step on scratch with no files. */
  snapshot?: string;
  /** The layer the step added, or null when it changed nothing. */
  layer: { diffID: string; descriptor: Descriptor } | null;
  description: string;
  created: string;
  lastUsed: string;
  size: number;
}

export interface StepHistory {
  key: string;
  material: Record<string, string>;
  time: string;
}

const hex = (key: string) => key.replace(/^sha256:/, '');

/**
 * A cache file, or undefined when it is missing or damaged (a bad disk, a file truncated by hand):
 * the cache is rebuilt by running the step, so a damaged entry is removed rather than failing builds.
 */
function readOrDrop<T>(file: string): T | undefined {
  try {
    return readJSONFile<T | undefined>(file, undefined);
  } catch {
    fs.rmSync(file, { force: true });
    return undefined;
  }
}

export class CacheIndex {
  private records: string;
  private steps: string;
  constructor(private root: string) {
    this.records = path.join(root, 'cache', 'records');
    this.steps = path.join(root, 'cache', 'steps');
    fs.mkdirSync(this.records, { recursive: true });
    fs.mkdirSync(this.steps, { recursive: true });
  }
  /** Where the checksum memos go, one file per build context (ChecksumMemos). */
  get memoDir(): string {
    return path.join(this.root, 'cache', 'checksums');
  }
  /** The record for `key`; a damaged one is a miss, and is removed (the step runs and writes a new one). */
  lookup(key: string): CacheRecord | undefined {
    return readOrDrop<CacheRecord>(path.join(this.records, hex(key) + '.json'));
  }
  /** The file's mtime is the record's use time from here on (`touch`), so it starts at `lastUsed`. */
  save(rec: CacheRecord): void {
    const file = path.join(this.records, hex(rec.key) + '.json');
    writeFileAtomic(file, JSON.stringify(rec));
    const t = new Date(rec.lastUsed);
    if (!Number.isNaN(t.getTime())) fs.utimesSync(file, t, t);
  }
  /**
   * A hit's use time, for the prune policy: the record file's mtime, set in one call, where rewriting
   * the record cost a create and a rename on every cache hit of every build. `list` reads the later
   * of the two. A record removed in between (nothing prunes under a build's GC lock) is left gone.
   */
  touch(rec: CacheRecord): void {
    const now = new Date();
    try {
      fs.utimesSync(path.join(this.records, hex(rec.key) + '.json'), now, now);
    } catch {
      // gone: this build still has the result it looked up
    }
  }
  remove(key: string): void {
    fs.rmSync(path.join(this.records, hex(key) + '.json'), { force: true });
  }
  list(): CacheRecord[] {
    const out: CacheRecord[] = [];
    for (const f of fs.readdirSync(this.records)) {
      if (!f.endsWith('.json')) continue;
      const file = path.join(this.records, f);
      const rec = readOrDrop<CacheRecord>(file);
      const touched = rec && fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs;
      if (rec) out.push(touched && touched > Date.parse(rec.lastUsed) ? { ...rec, lastUsed: new Date(touched).toISOString() } : rec);
    }
    return out;
  }
  private stepFile(stepId: string, ext = '.json'): string {
    return path.join(this.steps, crypto.createHash('sha256').update(stepId).digest('hex') + ext);
  }
  private timesFile(stepId: string): string {
    return this.stepFile(stepId, '.times');
  }
  /**
   * What `lastStep` read, by step, with the identity of the file it came from: a miss asks twice (to
   * explain itself, and for a COPY written on its last result), and a 20,000-file COPY's record is
   * 1.5 MB of JSON (3 parses of it were 67 ms of a 2.1 s one-file edit). Records are replaced by a
   * rename, so an unchanged identity means unchanged bytes; callers only read what they are given.
   */
  private readSteps = new Map<string, { identity: string; h: StepHistory | undefined }>();

  lastStep(stepId: string): StepHistory | undefined {
    const file = this.stepFile(stepId);
    const identity = identityOf(file);
    if (identity === undefined) return undefined;
    const known = this.readSteps.get(stepId);
    if (known?.identity === identity) return known.h;
    const h = readOrDrop<StepHistory>(file);
    this.readSteps.set(stepId, { identity, h });
    return h;
  }
  /**
   * Only for saying what changed at the next miss: no fsync, and no write when the step's last key is
   * already this one (every hit of a no-change build), since its material is then the same too. The
   * key is read from the record's first bytes, not by parsing all of it.
   */
  rememberStep(stepId: string, h: StepHistory): void {
    const file = this.stepFile(stepId);
    if (storedKey(file) === h.key) return;
    writeFileAtomic(file, JSON.stringify(h), { sync: false });
  }
  /**
   * The file times of the step's last COPY result, beside its step record; replaced by every COPY of
   * the step that records them. A shortcut only: no fsync, and a damaged or missing file is none.
   */
  rememberCopyTimes(stepId: string, t: CopyTimes): void {
    writeFileAtomic(this.timesFile(stepId), JSON.stringify(t), { sync: false });
  }
  lastCopyTimes(stepId: string): CopyTimes | undefined {
    const t = readOrDrop<CopyTimes>(this.timesFile(stepId));
    return t && typeof t.snapshot === 'string' && t.times !== null && typeof t.times === 'object' ? t : undefined;
  }
}

/**
 * The times a COPY gave the regular files of one result snapshot (walk path → mtime in whole
 * milliseconds), for the next COPY of the same step written on that result (ops/copyreuse.ts).
 */
export interface CopyTimes {
  snapshot: string;
  times: Record<string, number>;
}

/** A file's inode, size and times, or undefined when it is missing. */
function identityOf(file: string): string | undefined {
  const st = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  return st && `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** A record's key as `rememberStep` writes it first (`{"key":"…",`). */
const KEY_HEAD = /^\{"key":("(?:[^"\\]|\\.)*"),/;

/**
 * The key of the step record in `file`, from its head; undefined when there is none. A head of
 * another shape (damaged, or written by hand) is parsed in full, and dropped when it does not parse.
 */
function storedKey(file: string): string | undefined {
  let head: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(512);
      head = buf.toString('utf8', 0, fs.readSync(fd, buf, 0, buf.length, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const m = KEY_HEAD.exec(head);
  if (m) {
    try {
      return JSON.parse(m[1]!) as string;
    } catch {
      // not a JSON string after all: the full parse decides
    }
  }
  return readOrDrop<StepHistory>(file)?.key;
}

/**
 * One metadata store shared by all drivers: snapshot keys and names map to numeric ids, drivers name
 * on-disk objects by id. Every change is a locked read-modify-write of one JSON file replaced
 * atomically, so concurrent tsbuild processes and a kill -9 at any point leave it consistent.
 *
 * Reads are served from the last parse while the file is the same inode with the same size and times:
 * the file is only ever replaced by a rename, never written in place, so an unchanged identity means
 * unchanged bytes. A build looks snapshots up at every step, and parsing the whole file each time made
 * a no-change build of 200 steps 75 % slower in a store of 700 snapshots than in an empty one. An
 * update starts from that parse too, as a shallow copy (readers keep the table they were given): a
 * one-file COPY updates the table at least twice (prepare, commit), and each update re-parsed and
 * deep-froze all of it, 7-10 ms of a 200 ms build in a store of 250 snapshots, in code that runs too
 * rarely to be optimized. The table and its map are frozen; the records are read-only by type
 * (`RecordView`), and an update replaces a record, never changes one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseJSONText, readJSONFile, repairMirrored, withLock, writeFileMirrored } from '../fsutil/index.js';
import { SnapshotError } from './errors.js';
import type { Info, Kind } from './types.js';

export interface Record_ {
  id: number;
  kind: Kind;
  parent?: string;
  created: string;
  labels: Record<string, string>;
}

interface DB {
  nextId: number;
  snapshots: Record<string, Record_>;
}

/** A record as readers get it: an update replaces records, never changes one. */
export type RecordView = Readonly<Omit<Record_, 'labels'>> & { readonly labels: Readonly<Record<string, string>> };

/** The table as readers get it: shared with every other reader and with the next update, never changed by them. */
export interface ReadonlyDB {
  readonly nextId: number;
  readonly snapshots: { readonly [key: string]: RecordView };
}

export class MetaStore {
  private file: string;
  private lock: string;
  private cached?: { identity: string; db: DB };
  constructor(dir: string) {
    this.file = path.join(dir, 'metadata.json');
    this.lock = path.join(dir, 'metadata.lock');
  }
  /** The current metadata, shared: callers read it and never change it. */
  read(): ReadonlyDB {
    const now = identityOf(() => fs.statSync(this.file, { bigint: true }));
    if (now !== undefined && now === this.cached?.identity) return this.cached.db;
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY;
      throw e;
    }
    try {
      // The identity of the inode read, not of the name: a rename between the stat above and the open
      // must not file new bytes under an old identity.
      const identity = identityOf(() => fs.fstatSync(fd, { bigint: true }))!;
      const db = shallowFreeze(parseJSONText<DB>(fs.readFileSync(fd, 'utf8'), this.file));
      this.cached = { identity, db };
      return db;
    } finally {
      fs.closeSync(fd);
    }
  }
  /** `fn` changes a copy of the table (records are replaced, not changed), which is then written. */
  update<T>(fn: (db: { nextId: number; snapshots: Record<string, RecordView> }) => T): T {
    return withLock(this.lock, () => {
      // Under the lock only this process replaces the file: a parse of the same identity is its bytes.
      const now = identityOf(() => fs.statSync(this.file, { bigint: true }));
      const from = now !== undefined && now === this.cached?.identity ? this.cached.db : readJSONFile<DB>(this.file, { nextId: 1, snapshots: {} });
      const db: DB = { nextId: from.nextId, snapshots: { ...from.snapshots } };
      const r = fn(db);
      writeFileMirrored(this.file, JSON.stringify(db));
      // Under the lock no other writer can have replaced the file since the rename.
      const identity = identityOf(() => fs.statSync(this.file, { bigint: true }));
      this.cached = identity === undefined ? undefined : { identity, db: shallowFreeze(db) };
      return r;
    });
  }
  /** `fn` with the metadata read under its lock (a reader that must not race a writer); nothing is written. */
  locked<T>(fn: (db: ReadonlyDB) => T): T {
    return withLock(this.lock, () => fn(this.read()));
  }
  get(key: string): RecordView {
    const r = this.read().snapshots[key];
    if (!r) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
    return r;
  }
  /** The chain of committed ancestors, nearest first, as records with their keys. */
  parents(db: ReadonlyDB, parent: string | undefined): { key: string; rec: RecordView }[] {
    const out: { key: string; rec: RecordView }[] = [];
    for (let k = parent; k; k = db.snapshots[k]?.parent) {
      const rec = db.snapshots[k];
      if (!rec) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `parent snapshot ${k} does not exist`);
      out.push({ key: k, rec });
    }
    return out;
  }
  static info(key: string, r: RecordView): Info {
    return { key, kind: r.kind, parent: r.parent, created: r.created, labels: { ...r.labels } };
  }
}

const EMPTY: ReadonlyDB = Object.freeze({ nextId: 1, snapshots: Object.freeze({}) });

/** The table and its map frozen (two calls, whatever the store's size): its records are read-only by type. */
function shallowFreeze(db: DB): DB {
  Object.freeze(db.snapshots);
  return Object.freeze(db);
}

function identityOf(stat: () => fs.BigIntStats): string | undefined {
  let st: fs.BigIntStats;
  try {
    st = stat();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.birthtimeNs}`;
}

function validDB(text: string): boolean {
  try {
    const db = JSON.parse(text) as DB;
    return typeof db.nextId === 'number' && db.snapshots !== null && typeof db.snapshots === 'object' && Object.values(db.snapshots).every((r) => typeof r?.id === 'number' && typeof r.kind === 'string');
  } catch {
    return false;
  }
}

export interface MetadataCheck {
  file: string;
  /** What is wrong with it; undefined when it reads well. */
  problem?: string;
  /** What `repair` did. */
  repaired?: string;
}

/**
 * Checks a driver's metadata file (`<driverRoot>/metadata.json`) and, with `repair`, restores it from
 * its mirror, or, with no good copy left, starts it empty above every id on disk: the driver's cleanup
 * then deletes the snapshots no record names, and images are unpacked again from their blobs.
 */
export function checkMetadata(driverRoot: string, repair: boolean): MetadataCheck {
  const file = path.join(driverRoot, 'metadata.json');
  const rebuild = () => {
    let top = 0;
    const objects = path.join(driverRoot, 'snapshots');
    for (const e of fs.existsSync(objects) ? fs.readdirSync(objects) : []) if (/^\d+$/.test(e)) top = Math.max(top, Number(e));
    return JSON.stringify({ nextId: top + 1, snapshots: {} });
  };
  const r = repairMirrored(file, path.join(driverRoot, 'metadata.lock'), validDB, repair, rebuild);
  if (r === 'ok') return { file };
  const problem = 'not a valid snapshot table (damaged or truncated)';
  if (r === 'damaged') return { file, problem };
  if (r === 'restored') return { file, problem, repaired: `restored from ${path.basename(file)}.bak` };
  return { file, problem, repaired: `no good copy: started empty (the damaged file kept as ${path.basename(file)}.damaged-*); snapshots are dropped and images unpacked again from their blobs` };
}

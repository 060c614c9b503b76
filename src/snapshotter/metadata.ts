/**
 * One metadata store shared by all drivers: snapshot keys and names map to numeric ids, drivers name
 * on-disk objects by id. Every change is a locked read-modify-write of one JSON file replaced
 * atomically, so concurrent tsbuild processes and a kill -9 at any point leave it consistent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readJSONFile, repairMirrored, withLock, writeFileMirrored } from '../fsutil/index.js';
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

export class MetaStore {
  private file: string;
  private lock: string;
  constructor(dir: string) {
    this.file = path.join(dir, 'metadata.json');
    this.lock = path.join(dir, 'metadata.lock');
  }
  read(): DB {
    return readJSONFile<DB>(this.file, { nextId: 1, snapshots: {} });
  }
  update<T>(fn: (db: DB) => T): T {
    return withLock(this.lock, () => {
      const db = this.read();
      const r = fn(db);
      writeFileMirrored(this.file, JSON.stringify(db));
      return r;
    });
  }
  /** `fn` with the metadata read under its lock (a reader that must not race a writer); nothing is written. */
  locked<T>(fn: (db: DB) => T): T {
    return withLock(this.lock, () => fn(this.read()));
  }
  get(key: string): Record_ {
    const r = this.read().snapshots[key];
    if (!r) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
    return r;
  }
  /** The chain of committed ancestors, nearest first, as records with their keys. */
  parents(db: DB, parent: string | undefined): { key: string; rec: Record_ }[] {
    const out: { key: string; rec: Record_ }[] = [];
    for (let k = parent; k; k = db.snapshots[k]?.parent) {
      const rec = db.snapshots[k];
      if (!rec) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `parent snapshot ${k} does not exist`);
      out.push({ key: k, rec });
    }
    return out;
  }
  static info(key: string, r: Record_): Info {
    return { key, kind: r.kind, parent: r.parent, created: r.created, labels: r.labels };
  }
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

/**
 * One metadata store shared by all drivers: snapshot keys and names map to numeric ids, drivers name
 * on-disk objects by id. Every change is a locked read-modify-write of one JSON file replaced
 * atomically, so concurrent tsbuild processes and a kill -9 at any point leave it consistent.
 */
import path from 'node:path';
import { readJSONFile, withLock, writeFileAtomic } from '../fsutil/index.js';
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
      writeFileAtomic(this.file, JSON.stringify(db));
      return r;
    });
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

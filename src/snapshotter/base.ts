/**
 * What every driver shares: the metadata-level operations of the contract (commit, remove, stat,
 * walk, usage, cleanup) over the one metadata store, with on-disk objects named by id under
 * `snapshots/<id>`. Drivers supply how trees are made and mounted, and may hook commit and delete.
 */
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ext4WithoutJournal, spreadSubdirectories } from '../fsutil/index.js';
import { SnapshotError } from './errors.js';
import { MetaStore } from './metadata.js';
import { duSync } from './du.js';
import { listRetired, reapRetired, retiredName } from './retired.js';
import type { Info, Mount, Snapshotter, Usage } from './types.js';

export abstract class BaseSnapshotter implements Snapshotter {
  abstract readonly driver: string;
  protected meta: MetaStore;
  protected dir: string;
  constructor(root: string) {
    this.dir = path.join(root, 'snapshots');
    // A new store on an ext4 without a journal: each snapshot's tree in a block group of its own,
    // away from recent deletions (fsutil/placement.ts).
    if (fs.mkdirSync(this.dir, { recursive: true }) !== undefined && ext4WithoutJournal(this.dir)) spreadSubdirectories(this.dir);
    this.meta = new MetaStore(root);
  }
  abstract prepare(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]>;
  abstract view(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]>;
  abstract mounts(key: string, o?: { volatile?: boolean }): Promise<Mount[]>;

  protected fsOf(id: number): string {
    return path.join(this.dir, String(id), 'fs');
  }
  /** Deletes one snapshot's tree (a subvolume or dataset in some drivers). */
  protected deleteTree(dir: string): void {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  /** Runs after a snapshot became committed. */
  protected afterCommit(_id: number): void {}
  /**
   * Whether a tree can be moved aside and deleted later (`retire`): plain directories can; a btrfs
   * subvolume or a zfs dataset is deleted at once, which costs no walk of its files.
   */
  protected readonly movableTrees: boolean = true;
  private get retiredDir(): string {
    return path.join(this.dir, 'retired');
  }

  async commit(name: string, key: string, labels?: Record<string, string>): Promise<void> {
    const id = this.meta.update((db) => {
      const rec = db.snapshots[key];
      if (!rec) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
      if (rec.kind !== 'active') throw new SnapshotError('SNAPSHOT_INVALID', `snapshot ${key} is ${rec.kind}: only active snapshots can be committed`);
      if (db.snapshots[name] && name !== key) throw new SnapshotError('SNAPSHOT_EXISTS', `snapshot ${name} already exists`);
      delete db.snapshots[key];
      db.snapshots[name] = { ...rec, kind: 'committed', labels: { ...rec.labels, ...(labels ?? {}) } };
      return rec.id;
    });
    this.afterCommit(id);
  }
  async update(key: string, labels: Record<string, string | undefined>): Promise<void> {
    this.meta.update((db) => {
      const rec = db.snapshots[key];
      if (!rec) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
      const next = { ...rec.labels };
      for (const [k, v] of Object.entries(labels)) {
        if (v === undefined) delete next[k];
        else next[k] = v;
      }
      db.snapshots[key] = { ...rec, labels: next };
    });
  }
  async sync(keys: string[]): Promise<void> {
    const db = this.meta.read();
    // One tree per filesystem: a zfs dataset is a filesystem of its own, every other driver's trees
    // share one.
    const byDevice = new Map<number, string>();
    for (const k of keys) {
      const rec = db.snapshots[k];
      const st = rec && fs.statSync(this.fsOf(rec.id), { throwIfNoEntry: false });
      if (st && !byDevice.has(st.dev)) byDevice.set(st.dev, this.fsOf(rec.id));
    }
    if (byDevice.size === 0) return;
    // GNU sync -f: syncfs(2) of each file's filesystem (Node has no syncfs).
    const r = spawnSync('sync', ['-f', ...byDevice.values()], { encoding: 'utf8' });
    if (r.status !== 0) throw new SnapshotError('SNAPSHOT_SYNC', `syncing snapshot trees under ${this.dir} failed: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  }
  async remove(key: string): Promise<void> {
    const before = this.meta.read().snapshots[key];
    let id: number;
    try {
      // Metadata first, disk after: a crash in between leaves only an orphan directory for cleanup().
      id = this.forget(key);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      try {
        this.emptyIfDiscarded(key);
      } catch {
        // best effort: the metadata update below decides
      }
      // The table itself may have been replaced before its mirror's write failed.
      id = this.meta.read().snapshots[key] || !before ? this.forget(key) : before.id;
    }
    this.deleteSnapshotDir(id);
  }
  /** The directory of a snapshot whose record is gone, tree and all. */
  private deleteSnapshotDir(id: number): void {
    if (fs.existsSync(this.fsOf(id))) this.deleteTree(this.fsOf(id));
    fs.rmSync(path.join(this.dir, String(id)), { recursive: true, force: true });
  }
  /**
   * As `remove`, with the files deleted later (`reapRetired`): the record goes now, the tree is
   * renamed aside. Metadata first: a crash before the rename leaves an orphan for cleanup().
   */
  async retire(key: string, bytes: number): Promise<void> {
    if (!this.movableTrees) return this.remove(key);
    let id: number;
    try {
      id = this.forget(key);
    } catch (e) {
      // A full disk: remove() empties an active snapshot first, which makes room for the record.
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return this.remove(key);
      throw e;
    }
    const from = path.join(this.dir, String(id));
    try {
      fs.mkdirSync(this.retiredDir, { recursive: true });
      fs.renameSync(from, path.join(this.retiredDir, retiredName(id, bytes)));
    } catch {
      // Gone already (another process's cleanup() took the orphan), or not movable: delete it now.
      this.deleteSnapshotDir(id);
    }
  }
  async reapRetired(keepBytes: number, short?: () => boolean): Promise<{ trees: number; bytes: number }> {
    return reapRetired(this.retiredDir, keepBytes, short);
  }
  retired(): { trees: number; bytes: number } {
    const all = listRetired(this.retiredDir);
    return { trees: all.length, bytes: all.reduce((a, t) => a + t.bytes, 0) };
  }
  /** Drops a removable snapshot's record; returns the id its directory is named by. */
  private forget(key: string): number {
    return this.meta.update((db) => {
      const rec = db.snapshots[key];
      if (!rec) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
      const child = Object.entries(db.snapshots).find(([, r]) => r.parent === key);
      if (child) throw new SnapshotError('SNAPSHOT_IN_USE', `snapshot ${key} has a child (${child[0]}): remove the child first`);
      delete db.snapshots[key];
      return rec.id;
    });
  }
  /**
   * An active snapshot (or view) being thrown away, when its record's rewrite did not fit on a full
   * disk, is emptied before the rewrite is tried again: its own files are what keeps the disk full (a
   * RUN that filled it). Only then: emptying first cost every removal (each `run --rm`, each step) a
   * walk of the snapshot that deleting its directory does again. A crash in between leaves an empty
   * active snapshot, which recovery removes as before. Never a committed one.
   */
  private emptyIfDiscarded(key: string): void {
    const rec = this.meta.read().snapshots[key];
    if (!rec || rec.kind === 'committed' || !fs.existsSync(this.fsOf(rec.id))) return;
    if (Object.values(this.meta.read().snapshots).some((r) => r.parent === key)) return;
    for (const e of fs.readdirSync(this.fsOf(rec.id))) fs.rmSync(path.join(this.fsOf(rec.id), e), { recursive: true, force: true });
  }
  async stat(key: string): Promise<Info> {
    return MetaStore.info(key, this.meta.get(key));
  }
  async walk(fn: (info: Info) => void | Promise<void>): Promise<void> {
    for (const [k, r] of Object.entries(this.meta.read().snapshots)) await fn(MetaStore.info(k, r));
  }
  async usage(key: string): Promise<Usage> {
    return duSync(this.fsOf(this.meta.get(key).id));
  }
  async cleanup(): Promise<void> {
    // Under the metadata lock: another process creates a snapshot's directory and its record in one
    // locked update, so an unlocked read could see the directory without the record and delete it.
    // Nothing in the metadata changes, so nothing is written (it ran at the start of every command).
    this.meta.locked((db) => {
      const ids = new Set(Object.values(db.snapshots).map((r) => String(r.id)));
      for (const e of fs.readdirSync(this.dir)) {
        // Retired trees are no orphans: reapRetired deletes them, outside this lock.
        if (ids.has(e) || e === 'retired') continue;
        const tree = path.join(this.dir, e, 'fs');
        if (fs.existsSync(tree)) this.deleteTree(tree);
        fs.rmSync(path.join(this.dir, e), { recursive: true, force: true });
      }
    });
  }
  async close(): Promise<void> {}
}

/** Removes every snapshot, children before parents (tests, benches, tearing a store down). */
export async function removeAllSnapshots(sn: Snapshotter): Promise<void> {
  for (let left = true; left; ) {
    const infos: Info[] = [];
    await sn.walk((i) => void infos.push(i));
    const parents = new Set(infos.map((i) => i.parent));
    const leaves = infos.filter((i) => !parents.has(i.key));
    for (const l of leaves) await sn.remove(l.key);
    left = leaves.length > 0;
  }
}

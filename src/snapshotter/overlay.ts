/**
 * The overlayfs driver: each snapshot is a directory `snapshots/<id>/fs` (+ `work`); an active snapshot
 * is an overlay mount whose upperdir is its own fs and whose lowerdirs are its committed ancestors'. The
 * lowerdir list uses paths relative to the snapshots directory (the mount is made from there), which keeps
 * the option string short enough for deep chains.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SnapshotError } from './errors.js';
import { MetaStore } from './metadata.js';
import type { Info, Mount, Snapshotter, Usage, Kind } from './types.js';

export function duSync(dir: string): Usage {
  let size = 0;
  let inodes = 0;
  const seen = new Set<string>();
  const walk = (p: string) => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return;
    }
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    inodes++;
    size += st.blocks * 512;
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  return { size, inodes };
}

export class OverlaySnapshotter implements Snapshotter {
  readonly driver = 'overlayfs';
  private meta: MetaStore;
  private dir: string;
  constructor(root: string) {
    fs.mkdirSync(path.join(root, 'snapshots'), { recursive: true });
    this.dir = path.join(root, 'snapshots');
    this.meta = new MetaStore(root);
  }

  private create(kind: Kind, key: string, parent: string | undefined, labels: Record<string, string>): Mount[] {
    const id = this.meta.update((db) => {
      if (db.snapshots[key]) throw new SnapshotError('SNAPSHOT_EXISTS', `snapshot ${key} already exists`);
      if (parent !== undefined) {
        const p = db.snapshots[parent];
        if (!p) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `parent snapshot ${parent} does not exist`);
        if (p.kind !== 'committed') throw new SnapshotError('SNAPSHOT_INVALID', `parent ${parent} is not committed (it is ${p.kind}): only committed snapshots can be parents`);
      }
      const id = db.nextId++;
      fs.rmSync(path.join(this.dir, String(id)), { recursive: true, force: true });
      fs.mkdirSync(path.join(this.dir, String(id), 'fs'), { recursive: true, mode: 0o755 });
      fs.mkdirSync(path.join(this.dir, String(id), 'work'), { mode: 0o700 });
      db.snapshots[key] = { id, kind, parent, created: new Date().toISOString(), labels };
      return id;
    });
    void id;
    return this.mountsSync(key);
  }

  private mountsSync(key: string): Mount[] {
    const db = this.meta.read();
    const rec = db.snapshots[key];
    if (!rec) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
    const lowers = this.meta.parents(db, rec.parent).map((p) => `${p.rec.id}/fs`);
    const own = `${rec.id}/fs`;
    if (rec.kind === 'view' || rec.kind === 'committed') {
      if (lowers.length === 0) {
        return [{ type: 'bind', source: path.join(this.dir, rec.kind === 'view' ? own : own), options: ['ro', 'rbind'] }];
      }
      if (lowers.length === 1) return [{ type: 'bind', source: path.join(this.dir, lowers[0]!), options: ['ro', 'rbind'] }];
      return [{ type: 'overlay', source: 'overlay', options: ['ro', `lowerdir=${lowers.join(':')}`], cwd: this.dir }];
    }
    if (lowers.length === 0) return [{ type: 'bind', source: path.join(this.dir, own), options: ['rw', 'rbind'] }];
    return [
      {
        type: 'overlay',
        source: 'overlay',
        options: [`lowerdir=${lowers.join(':')}`, `upperdir=${own}`, `workdir=${rec.id}/work`, 'index=off', 'redirect_dir=off', 'metacopy=off'],
        cwd: this.dir,
      },
    ];
  }

  async prepare(key: string, parent?: string, labels: Record<string, string> = {}): Promise<Mount[]> {
    return this.create('active', key, parent, labels);
  }
  async view(key: string, parent?: string, labels: Record<string, string> = {}): Promise<Mount[]> {
    return this.create('view', key, parent, labels);
  }
  async mounts(key: string): Promise<Mount[]> {
    return this.mountsSync(key);
  }
  async commit(name: string, key: string, labels?: Record<string, string>): Promise<void> {
    this.meta.update((db) => {
      const rec = db.snapshots[key];
      if (!rec) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
      if (rec.kind !== 'active') throw new SnapshotError('SNAPSHOT_INVALID', `snapshot ${key} is ${rec.kind}: only active snapshots can be committed`);
      if (db.snapshots[name] && name !== key) throw new SnapshotError('SNAPSHOT_EXISTS', `snapshot ${name} already exists`);
      delete db.snapshots[key];
      db.snapshots[name] = { ...rec, kind: 'committed', labels: { ...rec.labels, ...(labels ?? {}) } };
    });
    fs.rmSync(path.join(this.dir, String(this.meta.get(name).id), 'work'), { recursive: true, force: true });
  }
  async remove(key: string): Promise<void> {
    const id = this.meta.update((db) => {
      const rec = db.snapshots[key];
      if (!rec) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
      const child = Object.entries(db.snapshots).find(([, r]) => r.parent === key);
      if (child) throw new SnapshotError('SNAPSHOT_IN_USE', `snapshot ${key} has a child (${child[0]}): remove the child first`);
      delete db.snapshots[key];
      return rec.id;
    });
    // Metadata first, disk after: a crash in between leaves only an orphan directory for cleanup().
    fs.rmSync(path.join(this.dir, String(id)), { recursive: true, force: true });
  }
  async stat(key: string): Promise<Info> {
    return MetaStore.info(key, this.meta.get(key));
  }
  async walk(fn: (info: Info) => void | Promise<void>): Promise<void> {
    for (const [k, r] of Object.entries(this.meta.read().snapshots)) await fn(MetaStore.info(k, r));
  }
  async usage(key: string): Promise<Usage> {
    return duSync(path.join(this.dir, String(this.meta.get(key).id), 'fs'));
  }
  async cleanup(): Promise<void> {
    // Under the metadata lock: another process creates a snapshot's directory and its record in one
    // locked update, so an unlocked read could see the directory without the record and delete it.
    this.meta.update((db) => {
      const ids = new Set(Object.values(db.snapshots).map((r) => String(r.id)));
      for (const e of fs.readdirSync(this.dir)) if (!ids.has(e)) fs.rmSync(path.join(this.dir, e), { recursive: true, force: true });
    });
  }
  async close(): Promise<void> {}
  async upperDir(key: string): Promise<string | undefined> {
    return path.join(this.dir, String(this.meta.get(key).id), 'fs');
  }
}

/**
 * The native driver: every snapshot is a full, plain copy of its parent (`cp -a`, with reflinks where
 * the filesystem has them), so it works on any filesystem; layer diffs compare a snapshot's tree with
 * its parent's. Slower and bigger than overlayfs, but with no kernel requirement.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { SnapshotError } from './errors.js';
import { BaseSnapshotter } from './base.js';
import type { Kind, Mount } from './types.js';

export class NativeSnapshotter extends BaseSnapshotter {
  readonly driver: string = 'native';
  protected create(kind: Kind, key: string, parent: string | undefined, labels: Record<string, string>): Mount[] {
    const { id, parentId } = this.meta.update((db) => {
      if (db.snapshots[key]) throw new SnapshotError('SNAPSHOT_EXISTS', `snapshot ${key} already exists`);
      let parentId: number | undefined;
      if (parent !== undefined) {
        const p = db.snapshots[parent];
        if (!p) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `parent snapshot ${parent} does not exist`);
        if (p.kind !== 'committed') throw new SnapshotError('SNAPSHOT_INVALID', `parent ${parent} is not committed (it is ${p.kind}): only committed snapshots can be parents`);
        parentId = p.id;
      }
      const id = db.nextId++;
      // Reserve the directory; the copy happens outside the lock.
      fs.rmSync(path.join(this.dir, String(id)), { recursive: true, force: true });
      fs.mkdirSync(path.join(this.dir, String(id)), { recursive: true });
      db.snapshots[key] = { id, kind, parent, created: new Date().toISOString(), labels };
      return { id, parentId };
    });
    const target = this.fsOf(id);
    if (kind === 'view' && parentId !== undefined) return [{ type: 'bind', source: this.fsOf(parentId), options: ['ro', 'rbind'] }];
    if (parentId === undefined) this.makeEmpty(target);
    else this.copyTree(this.fsOf(parentId), target, parent!);
    return this.mountsFor(kind, id);
  }
  /** Driver hooks: how a tree is created empty, copied from a parent, and deleted. */
  protected makeEmpty(target: string): void {
    fs.mkdirSync(target, { mode: 0o755 });
  }
  protected copyTree(from: string, to: string, parentName: string): void {
    const r = spawnSync('cp', ['-a', '--reflink=auto', from, to], { encoding: 'utf8' });
    if (r.status !== 0) throw new TsbuildError('SNAPSHOT_COPY', `${this.driver} snapshotter: copying snapshot ${parentName} failed: ${(r.stderr || r.error?.message || '').trim()}`);
  }

  protected mountsFor(kind: Kind, id: number): Mount[] {
    return [{ type: 'bind', source: this.fsOf(id), options: [kind === 'active' ? 'rw' : 'ro', 'rbind'] }];
  }
  async prepare(key: string, parent?: string, labels: Record<string, string> = {}): Promise<Mount[]> {
    return this.create('active', key, parent, labels);
  }
  async view(key: string, parent?: string, labels: Record<string, string> = {}): Promise<Mount[]> {
    return this.create('view', key, parent, labels);
  }
  async mounts(key: string): Promise<Mount[]> {
    const db = this.meta.read();
    const r = db.snapshots[key];
    if (!r) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
    if (r.kind === 'view' && r.parent) return [{ type: 'bind', source: this.fsOf(db.snapshots[r.parent]!.id), options: ['ro', 'rbind'] }];
    return this.mountsFor(r.kind, r.id);
  }
  /** The full tree of an active snapshot and of its parent: the two sides of its diff. */
  async diffDirs(key: string): Promise<{ lower?: string; upper: string }> {
    const db = this.meta.read();
    const r = db.snapshots[key];
    if (!r) throw new SnapshotError('SNAPSHOT_NOT_FOUND', `snapshot ${key} does not exist`);
    const p = r.parent ? db.snapshots[r.parent] : undefined;
    return { lower: p ? this.fsOf(p.id) : undefined, upper: this.fsOf(r.id) };
  }
}

/**
 * The zfs driver (zfs(8)): each snapshot's tree is a dataset under the dataset that holds the store; a
 * child is a clone of a zfs snapshot of its parent's dataset; committed datasets are set readonly.
 * Diffs are the shared tree comparison. These machines have no zfs, so this driver's conformance suite
 * reports a skip with the reason; keep it small and reviewed against the zfs manual.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError } from '../errors/index.js';
import { NativeSnapshotter } from './native.js';

function zfs(args: string[]): string {
  const r = spawnSync('zfs', args, { encoding: 'utf8' });
  if (r.error) throw new TsbuildError('ZFS', `zfs snapshotter: the zfs program is missing (${r.error.message}); install zfsutils-linux`);
  if (r.status !== 0) throw new TsbuildError('ZFS', `zfs ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Why zfs cannot be used here, or undefined. */
export function zfsUnavailable(): string | undefined {
  const r = spawnSync('zfs', ['version'], { encoding: 'utf8' });
  if (r.error) return 'the zfs program is not installed (zfsutils-linux)';
  if (!fs.readFileSync('/proc/filesystems', 'utf8').includes('zfs')) return 'the zfs kernel module is not loaded';
  return undefined;
}

export class ZfsSnapshotter extends NativeSnapshotter {
  override readonly driver = 'zfs';
  // A subvolume (dataset) is deleted without a walk of its files: nothing to gain from later.
  protected override readonly movableTrees = false;
  private dataset: string;
  constructor(root: string) {
    super(root);
    // `zfs list -H -o name PATH` names the dataset a path lives on (zfs-list(8)).
    const name = zfs(['list', '-H', '-o', 'name', this.dir]).trim();
    if (!name) throw new TsbuildError('ZFS', `zfs snapshotter: ${this.dir} is not on a zfs dataset; put the store (--root) on zfs`);
    this.dataset = name;
  }
  private datasetOf(treeDir: string): string {
    // trees live at <snapshots>/<id>/fs; the dataset is <store dataset>/tsb-<id>
    return `${this.dataset}/tsb-${path.basename(path.dirname(treeDir))}`;
  }
  protected override makeEmpty(target: string): void {
    zfs(['create', '-o', `mountpoint=${target}`, this.datasetOf(target)]);
    fs.chmodSync(target, 0o755);
  }
  protected override copyTree(from: string, to: string): void {
    const snap = `${this.datasetOf(from)}@tsb-${path.basename(path.dirname(to))}`;
    zfs(['snapshot', snap]);
    zfs(['clone', '-o', `mountpoint=${to}`, snap, this.datasetOf(to)]);
  }
  protected override deleteTree(dir: string): void {
    const r = spawnSync('zfs', ['list', '-H', '-o', 'name', this.datasetOf(dir)], { encoding: 'utf8' });
    if (r.status !== 0) {
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    }
    // -R also destroys the origin snapshots this dataset made for its (already removed) clones.
    zfs(['destroy', '-R', this.datasetOf(dir)]);
  }
  protected override afterCommit(id: number): void {
    zfs(['set', 'readonly=on', this.datasetOf(this.fsOf(id))]);
  }

}

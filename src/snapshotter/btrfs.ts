/**
 * The btrfs driver: each snapshot's tree is a btrfs subvolume; a child is a writable snapshot of its
 * parent's subvolume (copy-on-write, constant time), committed ones are made read-only. Layer diffs are
 * the tree comparison the native driver uses. The store root must be on btrfs; `btrfs` (btrfs-progs) is
 * the only tool used, and every call's failure is reported with its output.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { TsbuildError } from '../errors/index.js';
import { NativeSnapshotter } from './native.js';

function btrfs(args: string[]): void {
  const r = spawnSync('btrfs', args, { encoding: 'utf8' });
  if (r.error) throw new TsbuildError('BTRFS', `btrfs snapshotter: the btrfs program is missing (${r.error.message}); install btrfs-progs`);
  if (r.status !== 0) throw new TsbuildError('BTRFS', `btrfs ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
}

/** Whether `dir` is on btrfs (statfs magic 0x9123683e), probed with stat -f. */
export function onBtrfs(dir: string): boolean {
  const r = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === 'btrfs';
}

export class BtrfsSnapshotter extends NativeSnapshotter {
  override readonly driver = 'btrfs';
  // A subvolume (dataset) is deleted without a walk of its files: nothing to gain from later.
  protected override readonly movableTrees = false;
  constructor(root: string) {
    super(root);
    if (!onBtrfs(this.dir)) {
      throw new TsbuildError('BTRFS', `btrfs snapshotter: ${this.dir} is not on a btrfs filesystem; put the store (--root) on btrfs or use --snapshotter overlayfs`);
    }
  }
  protected override makeEmpty(target: string): void {
    btrfs(['subvolume', 'create', target]);
    fs.chmodSync(target, 0o755);
  }
  protected override copyTree(from: string, to: string): void {
    btrfs(['subvolume', 'snapshot', from, to]);
  }
  protected override deleteTree(dir: string): void {
    // What a crash left may be a plain directory rather than a subvolume.
    const r = spawnSync('btrfs', ['subvolume', 'show', dir], { encoding: 'utf8' });
    if (r.status !== 0) {
      fs.rmSync(dir, { recursive: true, force: true });
      return;
    }
    btrfs(['property', 'set', '-t', 'subvol', dir, 'ro', 'false']);
    btrfs(['subvolume', 'delete', dir]);
  }
  protected override afterCommit(id: number): void {
    btrfs(['property', 'set', '-t', 'subvol', this.fsOf(id), 'ro', 'true']);
  }

}

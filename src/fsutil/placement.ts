/**
 * Where a filesystem puts new directories. ext4 places a directory near its parent, unless the
 * parent is marked as the top of unrelated hierarchies (FS_TOPDIR_FL, `chattr +T`, meant for /home):
 * then each child goes to the block group with the fewest directories among those with room.
 *
 * Why a store wants that: an ext4 without a journal does not reuse an inode freed in the last
 * minute (six while its table block is unwritten), and it looks for each new inode from the start of
 * its group, past every such one (`recently_deleted` in fs/ext4/ialloc.c). Files created where many
 * were just deleted (another tool's, an earlier store's, a prune's) then cost a scan each. A
 * 20,000-file COPY into a store beside 60,000 fresh deletions took 5.7-9.7 s against 2.2-2.4 s with
 * the mark (docs/performance.md). Snapshots are unrelated hierarchies, so the directory that holds
 * them is marked when the store makes it.
 *
 * Advice only: other filesystems refuse the flag (ENOTTY, EOPNOTSUPP) or ignore it, and nothing
 * changes but where inodes go. Without the files addon (Node's headers missing at install) nothing
 * is done.
 */
import os from 'node:os';
import { loadAddon } from './addon.js';

interface Addon {
  addInodeFlags(dir: string, flags: number): number;
}

/** FS_TOPDIR_FL from linux/fs.h. */
const TOPDIR = 0x00020000;

/** Marks `dir` so that its subdirectories spread over the filesystem (ext2/3/4): on, or why not. */
export function spreadSubdirectories(dir: string): { on: true } | { on: false; reason: string } {
  const l = loadAddon<Addon>('files');
  if (!('addon' in l)) return { on: false, reason: l.reason };
  const errno = l.addon.addInodeFlags(dir, TOPDIR);
  return errno === 0 ? { on: true } : { on: false, reason: Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}` };
}

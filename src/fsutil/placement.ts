/**
 * Where a filesystem puts new directories. ext4 places a directory near its parent, unless the
 * parent is marked as the top of unrelated hierarchies (FS_TOPDIR_FL, `chattr +T`, meant for /home):
 * then each child goes to the block group with the fewest directories among those with room.
 *
 * Why a store wants that, on an ext4 without a journal only: there ext4 does not reuse an inode freed
 * in the last minute (six while its table block is unwritten), and it looks for each new inode from
 * the start of its group, past every such one (`recently_deleted` in fs/ext4/ialloc.c). Files
 * created where many were just deleted (another tool's, an earlier store's, a prune's) then cost a
 * scan each: a 20,000-file COPY beside 60,000 fresh deletions took 5.7-9.7 s without the mark and
 * 2.2-2.4 s with it; with nothing deleted nearby the mark costs a little (1.85 s unmarked, 2.01 s
 * marked: groups not used before cost more to fill). With a journal there is no such scan, and the
 * mark changed nothing (2.37 against 2.34 s; docs/performance.md). So it goes only where the scan
 * happens.
 *
 * Advice only: where the filesystem refuses the flag nothing changes but where inodes go. Without
 * the files addon (Node's headers missing at install) nothing is done.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAddon } from './addon.js';

interface Addon {
  addInodeFlags(dir: string, flags: number): number;
}

/** FS_TOPDIR_FL from linux/fs.h. */
const TOPDIR = 0x00020000;
const EXT4_SUPER_MAGIC = 0xef53;

/** Marks `dir` so that its subdirectories spread over the filesystem (ext2/3/4): on, or why not. */
export function spreadSubdirectories(dir: string): { on: true } | { on: false; reason: string } {
  const l = loadAddon<Addon>('files');
  if (!('addon' in l)) return { on: false, reason: l.reason };
  const errno = l.addon.addInodeFlags(dir, TOPDIR);
  return errno === 0 ? { on: true } : { on: false, reason: Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}` };
}

/**
 * Whether `dir` is on an ext4 (or ext2/3 through the ext4 driver) mounted without a journal: its
 * device's `/sys/fs/ext4/<name>/journal_task` says `<none>`. False when anything is unknown.
 */
export function ext4WithoutJournal(dir: string): boolean {
  try {
    if (fs.statfsSync(dir).type !== EXT4_SUPER_MAGIC) return false;
    const dev = fs.statSync(dir).dev;
    // dev_t as glibc encodes it: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31.
    const hi = Math.floor(dev / 2 ** 32);
    const lo = dev % 2 ** 32;
    const major = ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0);
    const minor = (lo & 0xff) | ((lo >>> 12) & 0xfff00);
    const name = path.basename(fs.readlinkSync(`/sys/dev/block/${major}:${minor}`));
    return fs.readFileSync(`/sys/fs/ext4/${name}/journal_task`, 'utf8').trim() === '<none>';
  } catch {
    return false;
  }
}

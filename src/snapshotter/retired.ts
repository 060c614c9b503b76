/**
 * Retired trees: snapshots removed from the metadata whose files are deleted later. Deleting a tree
 * of 20,000 files takes 1.5-2 s on this kind of disk, and a build that made a duplicate of a snapshot
 * it already had (`--no-cache`) would wait for it; BuildKit keeps such duplicates until its GC.
 * Each waits as `<dir>/<ms>-<id>-<bytes>` (the time it was retired, the snapshot's id, the size it is
 * accounted as), renamed in one step, so a listing needs no other file. A reaper claims an entry by
 * renaming it to `<entry>.reaping-<pid>` first: two reapers never delete the same tree, and one that
 * died mid-way leaves a claim the next reaper takes over.
 */
import fs from 'node:fs';
import path from 'node:path';
import { processAlive } from '../fsutil/index.js';

export interface RetiredTree {
  name: string;
  retiredMs: number;
  bytes: number;
}

const ENTRY = /^(\d+)-(\d+)-(\d+)$/;
const CLAIMED = /^(\d+)-(\d+)-(\d+)\.reaping-(\d+)$/;

export function retiredName(id: number, bytes: number, now = Date.now()): string {
  return `${now}-${id}-${Math.max(0, Math.round(bytes))}`;
}

/** Trees waiting, newest first; claims of reapers that died count as waiting. */
export function listRetired(dir: string): RetiredTree[] {
  const out: RetiredTree[] = [];
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const m = ENTRY.exec(name) ?? CLAIMED.exec(name);
    if (!m) continue;
    if (m[4] !== undefined && processAlive(parseInt(m[4], 10))) continue;
    out.push({ name, retiredMs: parseInt(m[1]!, 10), bytes: parseInt(m[3]!, 10) });
  }
  return out.sort((a, b) => b.retiredMs - a.retiredMs);
}

/**
 * Deletes trees, oldest first, until those left total at most `keepBytes` (0: all), then the oldest
 * of those left while `short()` (the filesystem is short of space or inodes: a tree of 20,000 small
 * files is 20 MB of budget but 20,000 inodes). A tree another reaper claimed first is skipped. Only
 * plain directories are retired (`movableTrees`).
 */
export function reapRetired(dir: string, keepBytes: number, short?: () => boolean): { trees: number; bytes: number } {
  let kept = 0;
  let trees = 0;
  let bytes = 0;
  const keep: RetiredTree[] = [];
  const drop: RetiredTree[] = [];
  for (const t of listRetired(dir)) {
    if (kept + t.bytes <= keepBytes) {
      kept += t.bytes;
      keep.push(t);
    } else drop.push(t);
  }
  const reap = (t: RetiredTree) => {
    const claimed = path.join(dir, `${t.name.replace(/\.reaping-\d+$/, '')}.reaping-${process.pid}`);
    try {
      fs.renameSync(path.join(dir, t.name), claimed);
    } catch {
      return; // another reaper has it
    }
    fs.rmSync(claimed, { recursive: true, force: true });
    trees++;
    bytes += t.bytes;
  };
  for (const t of drop.reverse()) reap(t);
  while (keep.length && short?.()) reap(keep.pop()!);
  return { trees, bytes };
}

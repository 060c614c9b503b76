/**
 * Crash recovery and GC share one sweep: unmount what a dead tsbuild left mounted under the store's
 * tmp/, remove active snapshots whose owning process is gone, and delete orphaned temp files. Safe to
 * run at the start of every command; it never touches what a live process owns.
 */
import fs from 'node:fs';
import path from 'node:path';
import { hostUnmount, reapCgroups } from '../runtime/index.js';
import { lockHeld, processAlive, reapStaleLock } from '../fsutil/index.js';
import type { Snapshotter } from '../snapshotter/index.js';
import { tempKeyOwner } from './keys.js';
import { settleUnsynced, type Settled } from './unsynced.js';

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function staleMounts(storeRoot: string, mountinfo = '/proc/self/mountinfo'): string[] {
  const tmp = path.join(storeRoot, 'tmp') + '/';
  const out: string[] = [];
  for (const line of fs.readFileSync(mountinfo, 'utf8').split('\n')) {
    const mp = line.split(' ')[4];
    if (!mp) continue;
    const p = unescapeMountinfo(mp);
    if (!p.startsWith(tmp)) continue;
    const m = /\/(\d+)-[^/]*$/.exec(p);
    if (m && processAlive(parseInt(m[1]!, 10)) && parseInt(m[1]!, 10) !== process.pid) continue;
    out.push(p);
  }
  return out.reverse();
}

/** Also settles snapshots written without a sync (unsynced.ts), and says what it did with them. */
export async function recoverStore(storeRoot: string, snapshotter: Snapshotter): Promise<Settled> {
  for (const m of staleMounts(storeRoot)) {
    try {
      hostUnmount(m);
      fs.rmdirSync(m);
    } catch {
      // already gone
    }
  }
  // A mount point a dead process made but had not mounted yet (killed between mkdir and mount) is in
  // no mountinfo: its empty directory goes here. rmdir, not rm: a busy or non-empty one stays.
  const mnt = path.join(storeRoot, 'tmp', 'mnt');
  for (const e of fs.existsSync(mnt) ? fs.readdirSync(mnt) : []) {
    const owner = /^(\d+)-/.exec(e);
    if (!owner || processAlive(parseInt(owner[1]!, 10))) continue;
    try {
      fs.rmdirSync(path.join(mnt, e));
    } catch {
      // still mounted, or not ours to judge
    }
  }
  const dead: string[] = [];
  await snapshotter.walk((info) => {
    const owner = tempKeyOwner(info.key);
    if (info.kind === 'committed' || owner === undefined || processAlive(owner)) return;
    // A container's layer lives as long as its record; one whose record was never written (the
    // creating command was killed in between) or is gone is an orphan.
    const ctr = info.labels['tsbuild.container'];
    if (!ctr || !fs.existsSync(path.join(storeRoot, 'containers', ctr))) dead.push(info.key);
  });
  for (const k of dead) await snapshotter.remove(k).catch(() => undefined);
  await snapshotter.cleanup();
  await reapCgroups();
  const tmp = path.join(storeRoot, 'tmp');
  for (const e of fs.existsSync(tmp) ? fs.readdirSync(tmp) : []) {
    // A download's lock whose owner died (kill -9 mid-pull): taken and let go, which removes it; one a
    // live process holds stays. A lock half taken or half released is removed with its dead owner.
    if (e.endsWith('.lock')) reapStaleLock(path.join(tmp, e));
    const aside = /\.lock\.(?:old|tmp)-(\d+)-/.exec(e);
    if (aside && !processAlive(parseInt(aside[1]!, 10))) fs.rmSync(path.join(tmp, e), { recursive: true, force: true });
    const m = /^[a-z]+-(\d+)-/.exec(e);
    if (m && !processAlive(parseInt(m[1]!, 10))) fs.rmSync(path.join(tmp, e), { recursive: true, force: true });
    // A partial download is kept for a later pull to resume, but not for ever.
    if (/^ingest-[a-f0-9]{64}$/.test(e) && !lockHeld(path.join(tmp, `${e}.lock`))) {
      const st = fs.statSync(path.join(tmp, e), { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > INGEST_TTL_MS) fs.rmSync(path.join(tmp, e), { force: true });
    }
  }
  return settleUnsynced(storeRoot, snapshotter);
}

/** How long an abandoned partial download waits for a pull to resume it. */
const INGEST_TTL_MS = 7 * 24 * 3600 * 1000;

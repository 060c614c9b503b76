/**
 * The layout of RUN --mount=type=cache directories: `<store>/cache/mounts/<hash of id>` with the id in a
 * sibling `.id` file (rewritten on each use, so its mtime is the last use) and a `.lock` file while a
 * `sharing=locked|private` step holds it. Export and import go through tar streams, never buffers.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { diffUpperDir, extractTar } from '../image/index.js';
import { duSync } from '../snapshotter/index.js';
import { lockHeld } from '../fsutil/index.js';

export function cacheMountDir(storeRoot: string, id: string): string {
  return path.join(storeRoot, 'cache', 'mounts', crypto.createHash('sha256').update(id).digest('hex').slice(0, 32));
}

export interface CacheMountInfo {
  id: string;
  dir: string;
  size: number;
  lastUsed: Date;
}

export function listCacheMounts(root: string): CacheMountInfo[] {
  const base = path.join(root, 'cache', 'mounts');
  if (!fs.existsSync(base)) return [];
  return fs.readdirSync(base).filter((e) => !e.includes('.')).map((e) => {
    const dir = path.join(base, e);
    let id = e;
    try {
      id = fs.readFileSync(`${dir}.id`, 'utf8');
    } catch {
      // an id file is written on each use; a mount from before that keeps its hash as name
    }
    const idStat = fs.existsSync(`${dir}.id`) ? fs.statSync(`${dir}.id`) : fs.statSync(dir);
    return { id, dir, size: duSync(dir).size, lastUsed: idStat.mtime };
  });
}

/** Removes a cache mount unless a step holds it (its `.lock` exists). */
export function removeCacheMount(m: CacheMountInfo): boolean {
  if (lockHeld(`${m.dir}.lock`)) return false;
  fs.rmSync(m.dir, { recursive: true, force: true });
  fs.rmSync(`${m.dir}.id`, { force: true });
  return true;
}

/** A cache mount's contents as a tar stream. */
export function mountTar(dir: string): Readable {
  return Readable.from(diffUpperDir(dir, { opaqueDirs: new Set() }));
}

/** Replaces cache mount `id` with the tar's contents (extracted aside, then renamed into place). */
export async function restoreMount(root: string, id: string, tar: Readable): Promise<void> {
  const target = cacheMountDir(root, id);
  const tmp = `${target}.import-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    await extractTar(tar, tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(tmp, target);
  fs.writeFileSync(`${target}.id`, id);
}

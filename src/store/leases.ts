/**
 * Leases: what a running build uses, so GC (prune, rmi, automatic GC) run by another command at the same
 * time leaves it alone, as containerd's leases do for BuildKit. A lease is a file
 * `leases/<pid>-<start>` that lives as long as its process: its first line is when it was opened, the
 * others name the snapshots and blobs it took from the store (cache hits, base images). GC keeps what
 * any live lease names and everything made since the oldest live lease was opened (the build's own new
 * layers, configs and manifests, before a name or a cache record holds them). A lease whose process
 * is gone (kill -9) holds nothing and is removed by the next GC.
 *
 * GC decides and removes under `gc.lock`; a build records a cache hit under the same lock, so a
 * snapshot GC has chosen is never handed out, and one handed out is never chosen.
 */
import fs from 'node:fs';
import path from 'node:path';
import { acquireLock, processStartTime, sameProcessAlive } from '../fsutil/index.js';

export interface Lease {
  /** Names `ids` (snapshot keys, blob digests) as in use until the lease is closed. */
  hold(ids: string[]): void;
  close(): void;
}

export interface LiveLeases {
  /** When the oldest live lease was opened (ms), if any is. */
  since?: number;
  holds: Set<string>;
}

const dirOf = (root: string) => path.join(root, 'leases');

export function openLease(root: string): Lease {
  fs.mkdirSync(dirOf(root), { recursive: true });
  const file = path.join(dirOf(root), `${process.pid}-${processStartTime(process.pid) ?? 0}-${Math.random().toString(36).slice(2, 8)}`);
  fs.writeFileSync(file, `${Date.now()}\n`);
  return {
    hold: (ids) => {
      if (ids.length > 0) fs.appendFileSync(file, ids.map((i) => `${i}\n`).join(''));
    },
    close: () => fs.rmSync(file, { force: true }),
  };
}

/** The live leases' holds and age; the files of dead processes are removed on the way. */
export function liveLeases(root: string): LiveLeases {
  const out: LiveLeases = { holds: new Set() };
  let names: string[] = [];
  try {
    names = fs.readdirSync(dirOf(root));
  } catch {
    return out;
  }
  for (const name of names) {
    const m = /^(\d+)-(\d+)-/.exec(name);
    const file = path.join(dirOf(root), name);
    if (!m || !sameProcessAlive(Number(m[1]), Number(m[2]) || undefined)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    let lines: string[];
    try {
      lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    } catch {
      continue; // closed meanwhile
    }
    const opened = Number(lines[0]);
    if (Number.isFinite(opened)) out.since = Math.min(out.since ?? opened, opened);
    for (const id of lines.slice(1)) out.holds.add(id);
  }
  return out;
}

/** Runs `fn` holding the store's GC lock (GC's decision and removal; a build's cache hit). */
export async function withGcLock<T>(root: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  const release = (await acquireLock(path.join(root, 'tmp', 'gc.lock'), { wait: true, signal }))!;
  try {
    return await fn();
  } finally {
    release();
  }
}

/** Runs `fn` with a lease open: what it writes to the store is kept from GC until it is named. */
export async function withLease<T>(root: string, fn: (lease: Lease) => Promise<T>): Promise<T> {
  const lease = openLease(root);
  try {
    return await fn(lease);
  } finally {
    lease.close();
  }
}

/**
 * Unpacked layers, and what build steps write, are not waited for on the disk. A pull's blob is fsynced (it is the truth every
 * snapshot can be made again from), but the files unpacked from it are left to the kernel's
 * writeback, as containerd leaves them by default: waiting for them put a second copy of every byte
 * on the pull's clock (a 512 MiB layer: 1.19× skopeo's pull synced, 1.00× not); a build step's
 * overlay, synced at unmount, waited for every dirty page of the store's filesystem. A process crash loses
 * nothing the page cache holds; a power loss or a kernel crash can. So such a snapshot is committed
 * with the boot it was written in (`tsbuild.unsynced-boot`), and the recovery sweep (due after every
 * restart of the machine, live.ts) settles each one:
 * - written in this boot a minute ago or more: its filesystem is synced (by then the kernel has
 *   written most of it back) and the mark removed;
 * - written in an earlier boot: its files may be incomplete, so it is removed with every committed
 *   snapshot built on it. Images are unpacked again from their blobs when next used, and so are
 *   build steps whose cache record names their layer (ops/handles.ts). One that a container's layer stands on is kept (the
 *   container's own files are the user's) and reported until that container is removed.
 */
import { bootId } from '../fsutil/index.js';
import { SnapshotError, type Snapshotter } from '../snapshotter/index.js';
import { liveLeases, withGcLock } from './leases.js';

export const UNSYNCED_LABEL = 'tsbuild.unsynced-boot';

/** A mark this old is synced by a sweep: the kernel writes dirty pages back after 30 s. */
const SETTLE_MS = 60_000;

/** The labels that commit a snapshot whose files were written without a sync. */
export const unsyncedLabels = (): Record<string, string> => ({ [UNSYNCED_LABEL]: bootId() });

export interface Settled {
  /** Marks of this boot cleared after a sync. */
  synced: number;
  /** Snapshots removed: written in an earlier boot, or built on one that was. */
  dropped: string[];
  /** Snapshots of an earlier boot kept because a container stands on them, with who. */
  kept: { key: string; by: string }[];
  /** Why this boot's could not be synced (they stay marked). */
  syncFailed?: string;
}

interface Node {
  parent?: string;
  kind: string;
  created: string;
  labels: Record<string, string>;
}

export async function settleUnsynced(root: string, sn: Snapshotter, o: { boot?: string; now?: number } = {}): Promise<Settled> {
  const boot = o.boot ?? bootId();
  const now = o.now ?? Date.now();
  const nodes = new Map<string, Node>();
  await sn.walk((i) => void nodes.set(i.key, { parent: i.parent, kind: i.kind, created: i.created, labels: i.labels }));
  const marked = [...nodes].filter(([, n]) => n.kind === 'committed' && n.labels[UNSYNCED_LABEL] !== undefined);
  const out: Settled = { synced: 0, dropped: [], kept: [] };
  if (marked.length === 0) return out;

  const settled = marked.filter(([, n]) => n.labels[UNSYNCED_LABEL] === boot && now - Date.parse(n.created) >= SETTLE_MS).map(([k]) => k);
  if (settled.length > 0) {
    try {
      await sn.sync(settled);
      for (const k of settled) await sn.update(k, { [UNSYNCED_LABEL]: undefined }).catch(ignoreGone);
      out.synced = settled.length;
    } catch (e) {
      // The marks stay for the next sweep; the command goes on.
      if (!(e instanceof SnapshotError && e.code === 'SNAPSHOT_SYNC')) throw e;
      out.syncFailed = e.message;
    }
  }

  const suspects = marked.filter(([, n]) => n.labels[UNSYNCED_LABEL] !== boot).map(([k]) => k);
  if (suspects.length === 0) return out;
  const children = new Map<string, string[]>();
  for (const [k, n] of nodes) if (n.parent) children.set(n.parent, [...(children.get(n.parent) ?? []), k]);
  const above = (k: string): string[] => (children.get(k) ?? []).flatMap((c) => [c, ...above(c)]);
  await withGcLock(root, async () => {
    const held = liveLeases(root).holds;
    const doomed = new Set<string>();
    for (const s of suspects) {
      const tree = [s, ...above(s)];
      const ctr = tree.map((k) => nodes.get(k)!).find((n) => n.kind !== 'committed' && n.labels['tsbuild.container'])?.labels['tsbuild.container'];
      if (ctr) {
        out.kept.push({ key: s, by: `container ${ctr.slice(0, 12)}` });
        continue;
      }
      // A command started since the restart is using it (a lease, or an active snapshot of its
      // own, which the sweep left since its owner lives): the next sweep decides.
      if (tree.some((k) => held.has(k) || nodes.get(k)!.kind !== 'committed')) continue;
      for (const k of tree) doomed.add(k);
    }
    // Children before parents: the deepest first.
    const depth = (k: string): number => (nodes.get(k)?.parent ? 1 + depth(nodes.get(k)!.parent!) : 0);
    for (const k of [...doomed].sort((a, b) => depth(b) - depth(a))) {
      try {
        await sn.remove(k);
        out.dropped.push(k);
      } catch (e) {
        ignoreGone(e);
      }
    }
  });
  return out;
}

function ignoreGone(e: unknown): void {
  if (!(e instanceof SnapshotError && (e.code === 'SNAPSHOT_NOT_FOUND' || e.code === 'SNAPSHOT_IN_USE'))) throw e;
}

/** What a sweep that settled snapshots tells the user, one line each; none when there is nothing to say. */
export function settledMessages(s: Settled): string[] {
  const lines: string[] = [];
  if (s.dropped.length > 0) {
    lines.push(`tsbuild: removed ${s.dropped.length} snapshot(s) unpacked or built before this machine restarted (or built on such layers): their files may not have reached the disk. Images, and build steps the cache has, are unpacked again from their stored layers when next used.`);
  }
  if (s.syncFailed) lines.push(`tsbuild: warning: ${s.syncFailed}; unpacked layers stay marked unsynced, and a restart of the machine before a later sweep syncs them makes tsbuild unpack them again`);
  for (const k of s.kept) {
    lines.push(`tsbuild: warning: snapshot ${k.key.slice(0, 19)} was unpacked or built before this machine restarted and its files may not have reached the disk, but ${k.by} stands on it: remove that container (tsbuild rm) and the layer is unpacked again when next used.`);
  }
  return lines;
}

/**
 * `run --userns` and `--uidmap/--gidmap`: which user namespace a container gets. `host` (the default)
 * is the one tsbuild runs in. As root, `auto[:size=N]` takes a free block from the `containers` ranges
 * of /etc/subuid and /etc/subgid (chosen when the record is written, under the container lock), and
 * --uidmap/--gidmap give the maps outright, as podman's flags do. `keep-id` keeps ids as they are:
 * rootless the user's own, as root every id as itself, in a namespace of the container's own. See
 * docs/runtime.md and docs/rootless.md.
 */
import { UsageError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import { IDENTITY_MAPS, addUserEntries, allocateAuto, checkIdMaps, fuseOverlayUnavailable, hostAccount, layerDirs, hostIdOf, isRootless, keepIdMap, ownIdMaps, parseAutoOptions, parseIdMap, parseKeepIdOptions, type ContainerConfig, type ContainerState, type UserNamespaceMaps } from '../runtime/index.js';

export interface UsernsRequest {
  userns?: string;
  uidmap?: string[];
  gidmap?: string[];
}

/** The container's user namespace as asked for, checked; `auto` gets its ids in `allocateUserns`. */
export function usernsConfig(req: UsernsRequest, driver: string): ContainerConfig['userns'] {
  const mode = req.userns;
  const uidmap = req.uidmap ?? [], gidmap = req.gidmap ?? [];
  const maps = uidmap.length > 0 || gidmap.length > 0;
  if ((mode === undefined || mode === 'host') && !maps) return undefined;
  if (mode === 'keep-id' || mode?.startsWith('keep-id:')) return keepId(mode, maps, driver);
  if (isRootless()) {
    throw new UsageError(
      `${mode !== undefined && mode !== 'host' ? `--userns ${mode}` : '--uidmap/--gidmap'}: a rootless tsbuild runs containers in your own user namespace (root = you, 1..N = your /etc/subuid range); ` +
        'a namespace per container needs root on the host (docs/rootless.md)',
    );
  }
  if (mode !== undefined && mode !== 'host' && !/^auto(:|$)/.test(mode)) {
    throw new UsageError(`--userns ${mode}: unknown mode; use host (the default), auto or auto:size=N (a block of ids from /etc/subuid's "containers" range), or --uidmap/--gidmap`);
  }
  if (mode === 'host' && maps) throw new UsageError('--userns host and --uidmap/--gidmap conflict: the maps make a user namespace of its own');
  if (mode?.startsWith('auto')) {
    if (maps) throw new UsageError(`--userns ${mode} and --uidmap/--gidmap conflict: auto chooses the maps; give one or the other`);
    return { mode: 'auto', size: parseAutoOptions(mode), uid: [], gid: [] };
  }
  // As podman: one side given is used for both.
  const uidFlag = uidmap.length > 0 ? '--uidmap' : '--gidmap', gidFlag = gidmap.length > 0 ? '--gidmap' : '--uidmap';
  const uid = (uidmap.length > 0 ? uidmap : gidmap).map((v) => parseIdMap(uidFlag, v));
  const gid = (gidmap.length > 0 ? gidmap : uidmap).map((v) => parseIdMap(gidFlag, v));
  checkIdMaps(uidFlag, uid);
  checkIdMaps(gidFlag, gid);
  return { mode: 'map', uid, gid };
}

/**
 * `--userns keep-id[:uid=U,gid=G]`, rootless only (as podman): the user's own ids are U:G in the
 * container (default: the same numbers as outside), its root is the first subordinate id, and the
 * container runs as U:G unless -u says otherwise. Its layers are shown through the map by
 * fuse-overlayfs, since idmapped mounts need root on the host.
 */
function keepId(mode: string, maps: boolean, driver: string): ContainerConfig['userns'] {
  if (maps) throw new UsageError(`--userns ${mode} and --uidmap/--gidmap conflict: keep-id chooses the maps; give one or the other`);
  if (!isRootless()) {
    // As podman 5 does for root: the current mapping (every id as itself) in a new user namespace, so
    // the container's root owns the host's files but holds its capabilities only in that namespace.
    if (mode !== 'keep-id') throw new UsageError(`--userns ${mode}: as root, keep-id keeps every id as it is and takes no options; use --uidmap for another mapping`);
    return { mode: 'keep-id', ...IDENTITY_MAPS, keepId: { uid: 0, gid: 0 } };
  }
  const fuse = fuseOverlayUnavailable();
  if (fuse) throw new UsageError(`--userns ${mode}: a rootless tsbuild shows the image to keep-id's map through fuse-overlayfs (idmapped mounts need root on the host), and ${fuse}`);
  if (driver !== 'overlayfs' && driver !== 'fuse-overlayfs') throw new UsageError(`--userns ${mode}: needs the overlayfs or fuse-overlayfs snapshotter (fuse-overlayfs serves the image's layers through the map), not ${driver}`);
  const opts = parseKeepIdOptions(mode);
  const own = ownIdMaps();
  const id = { uid: opts.uid ?? hostIdOf(own.uid, 0) ?? 0, gid: opts.gid ?? hostIdOf(own.gid, 0) ?? 0 };
  const uid = keepIdMap(own.uid, id.uid), gid = keepIdMap(own.gid, id.gid);
  if (!uid || !gid) {
    throw new UsageError(`--userns ${mode}: you have no subordinate ids, so the container's root and other users could not exist; add a range for your user to /etc/subuid and /etc/subgid, then run tsbuild system migrate (docs/rootless.md)`);
  }
  return { mode: 'keep-id', uid, gid, keepId: id };
}

/**
 * keep-id's user gets an /etc/passwd and /etc/group entry in the container (as podman adds one), named
 * and homed as the user is on the host.
 */
export async function addKeepIdUser(store: Store, key: string, id: { uid: number; gid: number }): Promise<void> {
  const upper = await store.snapshotter.upperDir?.(key);
  if (!upper) return;
  const own = ownIdMaps();
  const me = hostAccount(hostIdOf(own.uid, 0), hostIdOf(own.gid, 0));
  addUserEntries(layerDirs(await store.snapshotter.mounts(key)), upper, { name: me.name ?? `u${id.uid}`, uid: id.uid, gid: id.gid, home: me.home ?? '/' }, me.group ?? me.name ?? `g${id.gid}`);
}

/** Picks `auto`'s block, avoiding every other container's (run under the container lock). */
export function allocateUserns(cfg: ContainerConfig, others: ContainerState[], files?: { subuid: string; subgid: string }): void {
  if (cfg.userns?.mode !== 'auto') return;
  const used: UserNamespaceMaps[] = others.flatMap((c) => (c.config?.userns ? [c.config.userns] : []));
  const got = allocateAuto(cfg.userns.size ?? 65536, used, files);
  cfg.userns.uid = got.uid;
  cfg.userns.gid = got.gid;
}

/** inspect's HostConfig.UsernsMode: '' for the host's, as Docker. */
export function usernsMode(cfg: ContainerConfig | undefined): string {
  return cfg?.userns ? (cfg.userns.mode === 'map' ? 'private' : cfg.userns.mode) : '';
}

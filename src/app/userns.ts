/**
 * `run --userns` and `--uidmap/--gidmap`: which user namespace a container gets. `host` (the default)
 * is the one tsbuild runs in. As root, `auto[:size=N]` takes a free block from the `containers` ranges
 * of /etc/subuid and /etc/subgid (chosen when the record is written, under the container lock), and
 * --uidmap/--gidmap give the maps outright, as podman's flags do. See docs/runtime.md.
 */
import { UsageError } from '../errors/index.js';
import { allocateAuto, checkIdMaps, isRootless, parseAutoOptions, parseIdMap, type ContainerConfig, type ContainerState, type UserNamespaceMaps } from '../runtime/index.js';

export interface UsernsRequest {
  userns?: string;
  uidmap?: string[];
  gidmap?: string[];
}

/** The container's user namespace as asked for, checked; `auto` gets its ids in `allocateUserns`. */
export function usernsConfig(req: UsernsRequest): ContainerConfig['userns'] {
  const mode = req.userns;
  const uidmap = req.uidmap ?? [], gidmap = req.gidmap ?? [];
  const maps = uidmap.length > 0 || gidmap.length > 0;
  if ((mode === undefined || mode === 'host') && !maps) return undefined;
  if (mode === 'keep-id' || mode?.startsWith('keep-id:')) {
    throw new UsageError(
      isRootless()
        ? `--userns ${mode}: not yet in a rootless tsbuild; your own uid is the container's root (see docs/rootless.md)`
        : `--userns ${mode}: keep-id maps the calling user's own id into the container, so it is for a rootless tsbuild (as in podman); as root use --userns auto or --uidmap`,
    );
  }
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
  return cfg?.userns ? (cfg.userns.mode === 'auto' ? 'auto' : 'private') : '';
}

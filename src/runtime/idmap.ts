/**
 * A container's own user namespace, as root: `--uidmap/--gidmap CONTAINER:HOST:SIZE` (podman's form)
 * and `--userns=auto` (a free block from the `containers` entry of /etc/subuid and /etc/subgid, as
 * podman allocates it). The helper creates the namespace and shows the image's layers through the map
 * (idmapped mounts), so the image's root-owned files are root's inside while the container's root is
 * an unprivileged id on the host. Policy (parsing, checks, allocation) is here; the helper only maps.
 */
import { UsageError } from '../errors/index.js';
import type { Mount } from '../snapshotter/index.js';
import { readOr } from './cgroupfs.js';
import { overlayDirs } from './layers.js';

/** One line of /proc/PID/uid_map: `size` ids from `containerID` inside are `hostID`… outside. */
export interface IdMap { containerID: number; hostID: number; size: number }

export interface UserNamespaceMaps { uid: IdMap[]; gid: IdMap[] }

const MAX_ID = 2 ** 32 - 1;

/** Every id as itself: a user namespace that changes no ownership, for what needs one of its own. */
export const IDENTITY_MAPS: UserNamespaceMaps = { uid: [{ containerID: 0, hostID: 0, size: MAX_ID }], gid: [{ containerID: 0, hostID: 0, size: MAX_ID }] };

export function isIdentityMap(m: UserNamespaceMaps): boolean {
  return [m.uid, m.gid].every((x) => x.length === 1 && x[0]!.containerID === 0 && x[0]!.hostID === 0 && x[0]!.size === MAX_ID);
}

/** The kernel takes at most 340 lines per map; podman's own limit is lower. Few users need more than 5. */
const MAX_LINES = 340;

/** `CONTAINER:HOST:SIZE`, each a non-negative integer, SIZE at least 1, both ranges inside 32 bits. */
export function parseIdMap(flag: string, v: string): IdMap {
  const parts = v.split(':');
  const nums = parts.map((p) => (/^\d+$/.test(p) ? Number(p) : NaN));
  if (parts.length !== 3 || nums.some((n) => !Number.isSafeInteger(n))) {
    throw new UsageError(`${flag} ${v}: expected CONTAINER_ID:HOST_ID:SIZE (three numbers, e.g. 0:100000:65536)`);
  }
  const [containerID, hostID, size] = nums as [number, number, number];
  if (size < 1) throw new UsageError(`${flag} ${v}: the size must be at least 1`);
  if (containerID + size - 1 > MAX_ID || hostID + size - 1 > MAX_ID) throw new UsageError(`${flag} ${v}: the range ends past ${MAX_ID}, the largest id`);
  return { containerID, hostID, size };
}

function overlaps(a: { start: number; size: number }, b: { start: number; size: number }): boolean {
  return a.start < b.start + b.size && b.start < a.start + a.size;
}

/**
 * The kernel's rules for one map (no two lines overlapping on either side), plus ours: container root
 * must exist (the helper becomes it to set the container up), and root on the host is never mapped
 * (that would be no isolation at all; --userns host says so honestly).
 */
export function checkIdMaps(flag: string, maps: IdMap[]): void {
  if (maps.length > MAX_LINES) throw new UsageError(`${flag}: ${maps.length} ranges; the kernel takes at most ${MAX_LINES}`);
  const show = (m: IdMap) => `${m.containerID}:${m.hostID}:${m.size}`;
  for (let i = 0; i < maps.length; i++) {
    for (let j = i + 1; j < maps.length; j++) {
      const a = maps[i]!, b = maps[j]!;
      if (overlaps({ start: a.containerID, size: a.size }, { start: b.containerID, size: b.size })) throw new UsageError(`${flag} ${show(a)} and ${show(b)}: the container ranges overlap`);
      if (overlaps({ start: a.hostID, size: a.size }, { start: b.hostID, size: b.size })) throw new UsageError(`${flag} ${show(a)} and ${show(b)}: the host ranges overlap`);
    }
  }
  if (hostIdOf(maps, 0) === undefined) throw new UsageError(`${flag}: container id 0 is not mapped; the container's root must exist (e.g. 0:100000:65536)`);
  const root = maps.find((m) => m.hostID === 0);
  if (root) throw new UsageError(`${flag} ${show(root)}: maps host root (id 0) into the container; use --userns host to run as the host's root, or map an unprivileged range`);
}

/** The host id that container id `id` is, or undefined when the map leaves it out. */
export function hostIdOf(maps: IdMap[], id: number): number | undefined {
  const m = maps.find((x) => id >= x.containerID && id < x.containerID + x.size);
  return m ? m.hostID + (id - m.containerID) : undefined;
}

/** The container id that host id `id` is, or undefined. */
export function containerIdOf(maps: IdMap[], id: number): number | undefined {
  const m = maps.find((x) => id >= x.hostID && id < x.hostID + x.size);
  return m ? m.containerID + (id - m.hostID) : undefined;
}

/** Every `NAME:START:COUNT` range of `user` in an /etc/subuid-style file. */
export function subIdRanges(text: string, user: string): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const [who, start, count, extra] = line.trim().split(':');
    if (who !== user || extra !== undefined || !/^\d+$/.test(start ?? '') || !/^\d+$/.test(count ?? '')) continue;
    const s = Number(start), c = Number(count);
    if (Number.isSafeInteger(s) && c > 0 && s > 0) out.push({ start: s, count: c });
  }
  return out;
}

/** The user whose /etc/subuid ranges `--userns=auto` takes blocks from, as podman. */
export const AUTO_USER = 'containers';
export const AUTO_SIZE = 65536;

/** The `containers` ranges of one file; a missing file has none. */
export function autoRanges(file: string): { start: number; count: number }[] {
  return subIdRanges(readOr(file), AUTO_USER);
}

/**
 * `--userns=auto[:size=N]`: the lowest block of `size` ids inside the `containers` ranges of both files
 * that no other container of this store holds, mapped from container id 0.
 */
export function allocateAuto(size: number, used: UserNamespaceMaps[], files = { subuid: '/etc/subuid', subgid: '/etc/subgid' }): UserNamespaceMaps {
  const pick = (file: string, side: 'uid' | 'gid'): IdMap => {
    const ranges = autoRanges(file);
    if (ranges.length === 0) {
      throw new UsageError(
        `--userns auto: ${file} has no range for the user "${AUTO_USER}", where tsbuild (as podman) takes each container's ids from; ` +
          `add one, e.g. "echo ${AUTO_USER}:2147483647:2147483648 >> ${file}" (and the same in ${side === 'uid' ? files.subgid : files.subuid}), or give --uidmap/--gidmap`,
      );
    }
    const taken = used.flatMap((u) => u[side]).map((m) => ({ start: m.hostID, size: m.size })).sort((a, b) => a.start - b.start);
    for (const r of ranges) {
      let start = r.start;
      for (const t of taken) if (overlaps({ start, size }, t)) start = Math.max(start, t.start + t.size);
      if (start + size <= r.start + r.count) return { containerID: 0, hostID: start, size };
    }
    throw new UsageError(`--userns auto: no free block of ${size} ids left in the "${AUTO_USER}" ranges of ${file}: remove containers, give a smaller size=N, or add a range`);
  };
  return { uid: [pick(files.subuid, 'uid')], gid: [pick(files.subgid, 'gid')] };
}

/** `auto`, `auto:size=N`: the block size asked for. */
export function parseAutoOptions(v: string): number {
  let size = AUTO_SIZE;
  for (const opt of v.slice('auto'.length).replace(/^:/, '').split(',').filter(Boolean)) {
    const [k, val] = opt.split('=');
    if (k === 'size' && /^\d+$/.test(val ?? '') && Number(val) >= 1 && Number(val) <= 2 ** 31) size = Number(val);
    else throw new UsageError(`--userns ${v}: unknown or bad option "${opt}"; the form is auto or auto:size=N (N ids, default ${AUTO_SIZE})`);
  }
  return size;
}

/**
 * The directories the container's root filesystem is made of that it must see through its map: the
 * lower layers of an overlay, the source of a bind. An overlay's upper directory is left as it is (the
 * kernel writes it as the mounter, host root, who has no id in the map), so the container's writes
 * land there under their host ids.
 */
export function idmapSources(mounts: Mount[]): string[] {
  const out: string[] = [];
  for (const m of mounts) {
    if (m.type === 'bind' || m.type === 'rbind') out.push(m.source);
    if (m.type === 'overlay') out.push(...overlayDirs(m)!.lower);
  }
  return out;
}

/** A /proc/PID/uid_map or gid_map as maps (inside, outside, count). */
export function parseProcMap(text: string): IdMap[] {
  return text.split('\n').flatMap((l) => {
    const [c, h, n] = l.trim().split(/\s+/).map(Number);
    return Number.isSafeInteger(c) && Number.isSafeInteger(h) && Number.isSafeInteger(n) ? [{ containerID: c!, hostID: h!, size: n! }] : [];
  });
}

/** This process's own uid and gid maps (/proc/self/uid_map, gid_map). */
export function ownIdMaps(): UserNamespaceMaps {
  return { uid: parseProcMap(readOr('/proc/self/uid_map')), gid: parseProcMap(readOr('/proc/self/gid_map')) };
}

/**
 * `--userns keep-id` in a rootless tsbuild, as podman maps it: in the user's namespace (`own`: the
 * user is 0, its subordinate ids 1..N), the container's `id` is the user (0), its ids below `id` are
 * 1..id, and those above are the same ids again, up to N. Files the user owns on the host are `id`'s
 * in the container; the image's root is the first subordinate id. Undefined without subordinate ids.
 */
export function keepIdMap(own: IdMap[], id: number): IdMap[] | undefined {
  const top = Math.max(0, ...own.map((m) => m.containerID + m.size - 1));
  if (top < 1) return undefined;
  const low = Math.min(id, top);
  return [
    ...(low > 0 ? [{ containerID: 0, hostID: 1, size: low }] : []),
    { containerID: id, hostID: 0, size: 1 },
    ...(top > id ? [{ containerID: id + 1, hostID: id + 1, size: top - id }] : []),
  ];
}

/** `keep-id`, `keep-id:uid=U,gid=G` (podman's options): the ids the user becomes, when given. */
export function parseKeepIdOptions(v: string): { uid?: number; gid?: number } {
  const out: { uid?: number; gid?: number } = {};
  for (const opt of v.slice('keep-id'.length).replace(/^:/, '').split(',').filter(Boolean)) {
    const [k, val] = opt.split('=');
    if ((k === 'uid' || k === 'gid') && /^\d+$/.test(val ?? '') && Number(val) <= 2147483647) out[k] = Number(val);
    else throw new UsageError(`--userns ${v}: unknown or bad option "${opt}"; the form is keep-id or keep-id:uid=UID,gid=GID`);
  }
  return out;
}

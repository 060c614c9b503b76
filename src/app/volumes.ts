/**
 * `volume create|ls|inspect|rm|prune`. Which containers use a volume is read from the container records
 * (any state: Docker keeps a stopped container's volumes too), so there is no count to go stale.
 */
import { TsbuildError, UsageError } from '../errors/index.js';
import type { VolumeInfo } from '../runtime/index.js';
import type { Store } from '../store/index.js';

/** Volume name → the names of the containers that mount it. */
export function volumeUsers(store: Store): Map<string, string[]> {
  const users = new Map<string, string[]>();
  for (const c of store.containers.list()) {
    for (const m of c.config?.mounts ?? []) {
      if (m.type !== 'volume') continue;
      users.set(m.source, [...(users.get(m.source) ?? []), c.name]);
    }
  }
  return users;
}

/** `KEY=VALUE` flags (`-o`, `--label`) into a record. */
export function keyValues(values: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of values) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag} ${kv}: use KEY=VALUE`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

export function createVolume(store: Store, name: string | undefined, o: { driver?: string; options?: string[]; labels?: string[] } = {}): VolumeInfo {
  if (o.driver !== undefined && o.driver !== 'local') throw new UsageError(`--driver ${o.driver}: only the local driver exists`);
  return store.volumes.create(name, { options: keyValues(o.options ?? [], '-o'), labels: keyValues(o.labels ?? [], '--label') });
}

export interface VolumeRow extends VolumeInfo {
  /** Containers that use it. */
  Links: number;
  Size: number;
}

/** `volume ls --filter dangling=true|false, name=…, label=KEY[=VALUE], driver=local`. */
export function listVolumes(store: Store, filters: string[] = [], withSize = false): VolumeRow[] {
  const users = volumeUsers(store);
  const f = filters.map((x) => {
    const i = x.indexOf('=');
    if (i <= 0) throw new UsageError(`--filter ${x}: use KEY=VALUE (dangling, name, label, driver)`);
    return [x.slice(0, i), x.slice(i + 1)] as const;
  });
  for (const [k, v] of f) {
    if (!['dangling', 'name', 'label', 'driver'].includes(k)) throw new UsageError(`--filter ${k}: volume filters are dangling, name, label and driver`);
    if (k === 'dangling' && !['true', 'false', '1', '0'].includes(v)) throw new UsageError(`--filter dangling=${v}: use true or false`);
  }
  return store.volumes
    .list()
    .filter((v) =>
      f.every(([k, val]) => {
        if (k === 'dangling') return (val === 'true' || val === '1') === !users.has(v.Name);
        if (k === 'name') return v.Name.includes(val);
        if (k === 'driver') return v.Driver === val;
        const [lk, lv] = val.split(/=(.*)/s);
        return lk! in v.Labels && (lv === undefined || v.Labels[lk!] === lv);
      }),
    )
    .map((v) => ({ ...v, Links: users.get(v.Name)?.length ?? 0, Size: withSize ? store.volumes.size(v.Name) : -1 }));
}

export function inspectVolume(store: Store, name: string): VolumeInfo {
  const v = store.volumes.get(name);
  if (!v) throw new TsbuildError('VOLUME_NOT_FOUND', `no such volume: ${name} (tsbuild volume ls lists them)`);
  return v;
}

/** Removes volumes no container uses; a used one is refused with its users' names (as Docker, even with -f). */
export function removeVolume(store: Store, name: string, o: { force?: boolean } = {}): void {
  const users = volumeUsers(store).get(name);
  if (users) throw new TsbuildError('VOLUME_IN_USE', `volume ${name} is in use by container ${users.join(', ')}: remove the container first (tsbuild rm ${users[0]})`);
  try {
    store.volumes.remove(name);
  } catch (e) {
    // -f: a missing volume is not an error (Docker's rule).
    if (!(o.force && e instanceof TsbuildError && e.code === 'NOT_FOUND')) throw e;
  }
}

/** Docker 23's rule: anonymous volumes no container uses; `all` adds named ones. */
export function pruneVolumes(store: Store, o: { all?: boolean; filters?: string[] } = {}): { removed: string[]; bytes: number } {
  const removed: string[] = [];
  let bytes = 0;
  for (const v of listVolumes(store, [...(o.filters ?? []), 'dangling=true'])) {
    if (!o.all && !v.Anonymous) continue;
    bytes += store.volumes.size(v.Name);
    store.volumes.remove(v.Name);
    removed.push(v.Name);
  }
  return { removed, bytes };
}

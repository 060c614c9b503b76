/**
 * A container's storage: `-v`, `--mount`, `--tmpfs`, `--volumes-from` and the image's VOLUMEs, read
 * with Docker's rules into one mount list (stored in the container's record), volumes made on first use
 * and filled from the image when empty, and the list turned into the sandbox's mounts at each start.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { NotFoundError, TsbuildError, UsageError } from '../errors/index.js';
import { resolveInRoot } from '../fsutil/index.js';
import { checkPropagation, specMount, type MountConfig, type SpecMount } from '../runtime/index.js';
import { withMounted, type Store } from '../store/index.js';
import { parseMemory } from './limits.js';

const run = promisify(execFile);
const PROPAGATIONS = ['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared'];

export interface StorageRequest {
  /** -v / --volume */
  volumes?: string[];
  /** --mount type=…,source=…,target=… */
  mounts?: string[];
  /** --tmpfs /path[:options] */
  tmpfs?: string[];
  /** --volumes-from CONTAINER[:ro|rw] */
  volumesFrom?: string[];
}

function target(t: string | undefined, flag: string): string {
  if (!t) throw new UsageError(`${flag}: the mount needs a target path inside the container`);
  if (!t.startsWith('/')) throw new UsageError(`${flag}: the target ${t} must be an absolute path`);
  const n = path.posix.normalize(t).replace(/(.)\/$/, '$1');
  if (n === '/') throw new UsageError(`${flag}: cannot mount over / (the container's root)`);
  return n;
}

/** `-v [SOURCE:]TARGET[:OPTIONS]`, where a SOURCE with a slash (or starting with .) is a host path. */
export function parseVolumeFlag(v: string): MountConfig {
  const flag = `-v ${v}`;
  const parts = v.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new UsageError(`${flag}: use [SOURCE:]TARGET[:ro|rw,…], e.g. -v data:/var/lib/data or -v /srv/site:/usr/share/site:ro`);
  if (parts.length === 1) return { type: 'volume', source: '', target: target(parts[0], flag), readonly: false };
  // Two parts where the second is not a path: TARGET:OPTIONS (an anonymous volume with options).
  let [src, dst, opts] = parts.length === 2 && !parts[1]!.startsWith('/') ? ['', parts[0], parts[1]] : parts;
  const m: MountConfig = { type: 'volume', source: src!, target: target(dst, flag), readonly: false };
  if (src && (src.includes('/') || src.startsWith('.'))) {
    m.type = 'bind';
    m.source = path.resolve(src);
  }
  for (const o of (opts ?? '').split(',').filter(Boolean)) {
    if (o === 'ro' || o === 'rw') m.readonly = o === 'ro';
    else if (o === 'z' || o === 'Z') continue; // SELinux relabelling: nothing to do without SELinux, as Docker.
    else if (o === 'nocopy' && m.type === 'volume') m.nocopy = true;
    else if (PROPAGATIONS.includes(o) && m.type === 'bind') m.propagation = o;
    else throw new UsageError(`${flag}: unknown option ${o} (use ro, rw, z, Z, nocopy for volumes, or a propagation such as rslave for binds)`);
  }
  return m;
}

function bool(v: string | undefined, flag: string): boolean {
  if (v === undefined || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new UsageError(`${flag}: ${v} is not true or false`);
}

/** `--mount type=bind|volume|tmpfs,source=…,target=…,readonly,…` (Docker's keys). */
export function parseMountFlag(v: string): MountConfig {
  const flag = `--mount ${v}`;
  const kv = new Map<string, string | undefined>();
  for (const f of v.split(',')) {
    const i = f.indexOf('=');
    kv.set((i < 0 ? f : f.slice(0, i)).trim().toLowerCase(), i < 0 ? undefined : f.slice(i + 1));
  }
  const type = kv.get('type') ?? 'volume';
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') throw new UsageError(`${flag}: type=${type} is not supported; use bind, volume or tmpfs`);
  const m: MountConfig = { type, source: '', target: target(kv.get('target') ?? kv.get('destination') ?? kv.get('dst'), flag), readonly: false };
  for (const [k, val] of kv) {
    if (['type', 'target', 'destination', 'dst', 'consistency'].includes(k)) continue;
    if (k === 'source' || k === 'src') m.source = val ?? '';
    else if (k === 'readonly' || k === 'ro') m.readonly = bool(val, flag);
    else if (k === 'bind-propagation' && type === 'bind') {
      if (!PROPAGATIONS.includes(val ?? '')) throw new UsageError(`${flag}: bind-propagation=${val}: use rprivate, private, rslave, slave, rshared or shared`);
      m.propagation = val;
    } else if (k === 'volume-nocopy' && type === 'volume') m.nocopy = bool(val, flag);
    else if (k === 'volume-driver' && type === 'volume') {
      if (val !== 'local') throw new UsageError(`${flag}: volume-driver=${val}: only the local driver exists`);
    } else if (k === 'tmpfs-size' && type === 'tmpfs') m.tmpfsSize = parseMemory(val ?? '', `${flag} tmpfs-size`);
    else if (k === 'tmpfs-mode' && type === 'tmpfs') {
      if (!/^[0-7]{1,4}$/.test(val ?? '')) throw new UsageError(`${flag}: tmpfs-mode=${val}: use an octal mode such as 1777`);
      m.tmpfsMode = parseInt(val!, 8);
    } else throw new UsageError(`${flag}: unknown option ${k} for type=${type}`);
  }
  if (type === 'bind') {
    if (!m.source) throw new UsageError(`${flag}: a bind mount needs source=HOST_PATH`);
    m.source = path.resolve(m.source);
    // --mount, unlike -v, never creates the host path (Docker's rule).
    if (!fs.existsSync(m.source)) throw new UsageError(`${flag}: bind source path does not exist: ${m.source}`);
  }
  if (type === 'tmpfs' && m.source) throw new UsageError(`${flag}: a tmpfs mount takes no source`);
  return m;
}

/** `--tmpfs /path[:size=64m,mode=1777,exec,…]`. */
export function parseTmpfsFlag(v: string): MountConfig {
  const i = v.indexOf(':');
  const m: MountConfig = { type: 'tmpfs', source: '', target: target(i < 0 ? v : v.slice(0, i), `--tmpfs ${v}`), readonly: false, options: [] };
  for (const o of (i < 0 ? '' : v.slice(i + 1)).split(',').filter(Boolean)) {
    const [k, val] = o.split('=');
    if (k === 'size') m.tmpfsSize = parseMemory(val ?? '', `--tmpfs ${v} size`);
    else if (k === 'mode') {
      if (!/^[0-7]{1,4}$/.test(val ?? '')) throw new UsageError(`--tmpfs ${v}: mode=${val}: use an octal mode such as 1777`);
      m.tmpfsMode = parseInt(val!, 8);
    } else if (o === 'ro' || o === 'rw') m.readonly = o === 'ro';
    else if (['exec', 'noexec', 'nr_inodes', 'uid', 'gid'].includes(k!)) m.options!.push(o);
    else throw new UsageError(`--tmpfs ${v}: unknown option ${o} (use size=, mode=, ro, exec, uid=, gid=, nr_inodes=)`);
  }
  return m;
}

/**
 * The whole mount list, in Docker's precedence: explicit mounts, then --volumes-from (for targets not
 * yet taken), then an anonymous volume for each image VOLUME nobody mounted. Two explicit mounts on one
 * target are an error.
 */
export function mountList(store: Store, req: StorageRequest, imageVolumes: string[]): MountConfig[] {
  const explicit = [...(req.volumes ?? []).map(parseVolumeFlag), ...(req.mounts ?? []).map(parseMountFlag), ...(req.tmpfs ?? []).map(parseTmpfsFlag)];
  const taken = new Set<string>();
  for (const m of explicit) {
    if (taken.has(m.target)) throw new UsageError(`duplicate mount point: ${m.target} is mounted twice`);
    taken.add(m.target);
  }
  const out = [...explicit];
  for (const spec of req.volumesFrom ?? []) {
    const [ref, mode] = spec.split(':');
    if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new UsageError(`--volumes-from ${spec}: the mode must be ro or rw`);
    const c = store.containers.find(ref!);
    for (const m of c.config?.mounts ?? []) {
      if (m.type === 'tmpfs' || taken.has(m.target)) continue;
      taken.add(m.target);
      out.push({ ...m, readonly: mode === undefined ? m.readonly : mode === 'ro' });
    }
  }
  for (const v of imageVolumes) {
    const t = path.posix.normalize(v).replace(/(.)\/$/, '$1');
    if (!t.startsWith('/') || t === '/' || taken.has(t)) continue;
    taken.add(t);
    out.push({ type: 'volume', source: '', target: t, readonly: false });
  }
  return out;
}

/**
 * Makes what the list needs before the container exists: missing named volumes, anonymous volumes (the
 * names go into the list), missing -v host directories (Docker creates them). Returns the new volumes'
 * names, so a failure later can remove them.
 */
export function prepareMounts(store: Store, mounts: MountConfig[]): string[] {
  const made: string[] = [];
  for (const m of mounts) {
    if (m.type === 'volume') {
      const existed = m.source !== '' && store.volumes.get(m.source) !== undefined;
      const v = store.volumes.create(m.source || undefined, { anonymous: m.source === '' });
      if (!existed) made.push(v.Name);
      m.source = v.Name;
    } else if (m.type === 'bind' && !fs.existsSync(m.source)) {
      fs.mkdirSync(m.source, { recursive: true });
    }
  }
  return made;
}

async function isEmpty(dir: string): Promise<boolean> {
  return (await fs.promises.readdir(dir)).length === 0;
}

/**
 * Docker's copy-up: an empty local volume mounted where the image has a directory gets that directory's
 * content, owners and modes (unless nocopy). The container's root is mounted on the host for the copy;
 * paths are resolved inside it, so an image symlink cannot make us read the host.
 */
export async function populateVolumes(store: Store, snapshot: string, mounts: MountConfig[], o: { volatile?: boolean } = {}): Promise<void> {
  const todo: MountConfig[] = [];
  for (const m of mounts) {
    if (m.type !== 'volume' || m.nocopy) continue;
    const v = store.volumes.get(m.source);
    if (v && !v.Options.type && (await isEmpty(store.volumes.dataDir(v.Name)))) todo.push(m);
  }
  if (todo.length === 0) return;
  // Volatile for a container removed when it exits, as its own mount will be (supervise.ts).
  await withMounted(store.root, await store.snapshotter.mounts(snapshot, o), async (root) => {
    for (const m of todo) {
      const src = resolveInRoot(root, m.target);
      if (!fs.statSync(src, { throwIfNoEntry: false })?.isDirectory()) continue;
      const dst = store.volumes.dataDir(m.source);
      try {
        // GNU cp keeps owners, modes, times, xattrs, hard links and sparse files; `src/.` copies the
        // directory's own mode and owner onto the volume's root too.
        await run('cp', ['-a', '--reflink=auto', `${src}/.`, `${dst}/`]);
      } catch (e) {
        throw new TsbuildError('VOLUME_COPY', `cannot fill volume ${m.source} from the image's ${m.target}: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`, { cause: e });
      }
    }
  });
}

/** The list as the sandbox's mounts, checked against the host (propagation needs a shared source). */
export function specMounts(store: Store, mounts: MountConfig[] | undefined): SpecMount[] {
  return (mounts ?? []).map((m) => {
    if (m.type === 'bind') {
      if (!fs.existsSync(m.source)) throw new NotFoundError(`bind source ${m.source} (for ${m.target}) does not exist any more: create it, or remove the container and run it again`);
      checkPropagation(m.source, m.propagation);
    }
    return specMount(m, store.volumes);
  });
}

/** The container's anonymous volumes (run --rm, rm -v remove them). */
export function anonymousVolumes(store: Store, mounts: MountConfig[] | undefined): string[] {
  return (mounts ?? []).filter((m) => m.type === 'volume' && store.volumes.get(m.source)?.Anonymous).map((m) => m.source);
}

/** `inspect`'s Mounts, in Docker's shape. */
export function inspectMounts(store: Store, mounts: MountConfig[] | undefined): Record<string, unknown>[] {
  return (mounts ?? []).map((m) => ({
    Type: m.type,
    ...(m.type === 'volume' ? { Name: m.source, Driver: 'local' } : {}),
    Source: m.type === 'volume' ? store.volumes.dataDir(m.source) : m.source,
    Destination: m.target,
    Mode: m.type === 'bind' ? (m.readonly ? 'ro' : '') : m.type === 'volume' ? (m.nocopy ? 'nocopy' : 'z') : '',
    RW: !m.readonly,
    Propagation: m.type === 'bind' ? (m.propagation ?? 'rprivate') : '',
  }));
}

/**
 * `cp` between a container and the host, both ways, as `docker cp` does: a running container is
 * reached through /proc/<pid>/root (so its tmpfs and bind mounts are seen as it sees them), a stopped
 * one through its writable snapshot mounted on the host. Every path inside the container is resolved
 * as if its root were `/`, entry by entry, so no symlink in the container leads a read or a write out
 * of it. Copies into the container are owned by root there (`archive` keeps the source's ids).
 */
import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError, TsbuildError, UsageError } from '../errors/index.js';
import { resolveInRoot, writeAllSync } from '../fsutil/index.js';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import { extractTar } from '../image/index.js';
import { withMounted, type Store } from '../store/index.js';
import { FUSE_OVERLAY, containerIdOf, containerRootMounts, hostIdOf, type UserNamespaceMaps } from '../runtime/index.js';

export interface CopySpec {
  /** `CONTAINER:PATH` on exactly one side. */
  src: string;
  dest: string;
  archive?: boolean;
}

function split(arg: string): { container?: string; path: string } {
  // A host path with a colon must be written with a slash first (./a:b), as with docker cp.
  const m = /^([a-zA-Z0-9][a-zA-Z0-9_.-]*):(.*)$/.exec(arg);
  return m && !arg.startsWith('/') && !arg.startsWith('.') ? { container: m[1]!, path: m[2]! || '/' } : { path: arg };
}

async function inRoot<T>(store: Store, ref: string, fn: (root: string, ids: IdShift) => Promise<T> | T): Promise<T> {
  const c = store.containers.find(ref);
  // Only an overlay's upper layer holds host ids; a bind root (native, btrfs) is seen through the map.
  // A running fuse-overlayfs root takes host ids too (it maps them back to the container's on disk).
  const maps = c.config?.userns;
  if ((c.status === 'running' || c.status === 'paused') && c.containerPid && fs.existsSync(`/proc/${c.containerPid}/root`)) {
    const shifted = ['overlay', FUSE_OVERLAY].includes(rootFsType(c.containerPid) ?? '');
    return fn(`/proc/${c.containerPid}/root`, idShift(maps && shifted ? maps : undefined));
  }
  if (!c.snapshot) throw new TsbuildError('CONTAINER_DEAD', `container ${ref} has no filesystem (its record is damaged): remove it`);
  // Mounted as for running it (served by fuse-overlayfs when rootless with its own namespace); unmapped,
  // the disk's ids are then the container's.
  const mounts = containerRootMounts(await store.snapshotter.mounts(c.snapshot), maps !== undefined, `cp with container ${ref}`);
  const ids = idShift(mounts.some((m) => m.type === 'overlay' && m.options.some((o) => o.startsWith('upperdir='))) ? maps : undefined);
  return withMounted(store.root, mounts, async (dir) => fn(dir, ids));
}

/** The filesystem type of a process's root mount, from its mountinfo. */
function rootFsType(pid: number): string | undefined {
  for (const line of fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (pre?.split(' ')[4] === '/') return post?.split(' ')[0];
  }
  return undefined;
}

/** Host root has no id in the map of an idmapped mount: the kernel refuses its writes with EOVERFLOW. */
async function intoContainer(ref: string, dest: string, write: () => Promise<unknown> | void): Promise<void> {
  try {
    await write();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EOVERFLOW') throw e;
    throw new TsbuildError(
      'CP_IDMAPPED',
      `cannot write ${dest} in container ${ref} while it runs: that path is seen through the container's user namespace map (a volume, or the whole root on the native or btrfs snapshotter), where host root has no id; stop the container and copy again, or write it from inside: tsbuild exec -i ${ref} sh -c 'cat > FILE' < FILE`,
    );
  }
}

type Ids = { uid: number; gid: number };
/** Between the ids a container sees and the ones its writes carry on disk (its own user namespace). */
interface IdShift { toDisk: (i: Ids) => Ids; fromDisk: (i: Ids) => Ids }

/**
 * A container with a user namespace of its own writes its new files under host ids (the overlay's
 * upper directory is not seen through the map), while the image's files keep theirs: a copy in
 * gets the host ids of the container's ids, a copy out (-a) turns host ids back into the container's.
 */
function idShift(maps: UserNamespaceMaps | undefined): IdShift {
  if (!maps) return { toDisk: (i) => i, fromDisk: (i) => i };
  return {
    toDisk: (i) => ({ uid: hostIdOf(maps.uid, i.uid) ?? i.uid, gid: hostIdOf(maps.gid, i.gid) ?? i.gid }),
    fromDisk: (i) => ({ uid: containerIdOf(maps.uid, i.uid) ?? i.uid, gid: containerIdOf(maps.gid, i.gid) ?? i.gid }),
  };
}

/** A file's bytes written into an existing device or FIFO, which keeps its own mode, owner and times. */
function writeInto(src: string, to: string): void {
  const out = fs.openSync(to, 'w');
  const fd = fs.openSync(src, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n = fs.readSync(fd, buf); n > 0; n = fs.readSync(fd, buf)) writeAllSync(out, buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
    fs.closeSync(out);
  }
}

/** Copies `src` (host path) to `dest` (host path) entry by entry; `resolve` maps each destination inside its root. */
function copyTree(src: string, dest: (rel: string) => string, owner: (source: Ids) => Ids, rel = ''): void {
  const st = fs.lstatSync(src);
  const to = dest(rel);
  if (st.isDirectory()) {
    if (!fs.existsSync(to)) fs.mkdirSync(to, { mode: st.mode & 0o7777 });
    else if (!fs.statSync(to).isDirectory()) throw new TsbuildError('CP_NOT_DIR', `cannot overwrite non-directory ${rel || '/'} with a directory`);
    for (const e of fs.readdirSync(src)) copyTree(path.join(src, e), dest, owner, path.join(rel, e));
  } else if (st.isSymbolicLink()) {
    fs.rmSync(to, { force: true });
    fs.symlinkSync(fs.readlinkSync(src), to);
  } else if (st.isFile()) {
    const there = fs.lstatSync(to, { throwIfNoEntry: false });
    if (there?.isDirectory()) throw new TsbuildError('CP_IS_DIR', `cannot overwrite directory ${to} with a file`);
    if (there && (there.isCharacterDevice() || there.isBlockDevice() || there.isFIFO())) {
      // `cp CTR:FILE /dev/null` or a named pipe: the bytes go into it. Replacing it (or copyFile,
      // which sets the source's mode on its destination) would change a device every process uses.
      writeInto(src, to);
      return;
    }
    fs.rmSync(to, { force: true });
    fs.copyFileSync(src, to);
    fs.chmodSync(to, st.mode & 0o7777);
  } else return; // devices, sockets and fifos are not copied (as docker cp without -a)
  const ids = owner({ uid: st.uid, gid: st.gid });
  fs.lchownSync(to, ids.uid, ids.gid);
  if (!st.isSymbolicLink()) fs.utimesSync(to, st.atime, st.mtime);
}

/** Where a copy lands: into an existing directory as its basename, else at the path itself (docker cp's rules). */
function target(destExists: boolean, destIsDir: boolean, dest: string, srcPath: string): string {
  if (srcPath.endsWith('/.')) return dest; // the contents of a directory
  return destExists && destIsDir ? path.join(dest, path.basename(srcPath)) : dest;
}

/**
 * `cp`, both ways; `-` as the host side is a tar stream (`io.stdout` out of the container,
 * `io.stdin` into a directory of it), as `docker cp` does.
 */
export async function copy(store: Store, spec: CopySpec, io: { stdin?: Readable; stdout?: Writable } = {}): Promise<void> {
  const s = split(spec.src);
  const d = split(spec.dest);
  if (s.container !== undefined && d.path === '-' && d.container === undefined) {
    if (!io.stdout) throw new UsageError('cp to - needs an output stream');
    await inRoot(store, s.container, async (root) => {
      const from = resolveInRoot(root, s.path);
      if (!fs.existsSync(from)) throw new NotFoundError(`Could not find the file ${s.path} in container ${s.container}`, 'CP_NOT_FOUND');
      // Symlinks go into the archive as symlinks: nothing outside the container is read.
      const tar = await import('tar');
      await pipeline(tar.create({ cwd: path.dirname(from), portable: false, follow: false }, [path.basename(from)]) as unknown as Readable, io.stdout!, { end: false });
    });
    return;
  }
  if (s.container === undefined && s.path === '-' && d.container !== undefined) {
    if (!io.stdin) throw new UsageError('cp from - needs an input stream');
    await inRoot(store, d.container, async (root, shift) => {
      const dest = resolveInRoot(root, d.path);
      if (!fs.statSync(dest, { throwIfNoEntry: false })?.isDirectory()) throw new TsbuildError('CP_NOT_DIR', `cp - ${d.container}:${d.path}: the destination must be a directory in the container`);
      // Our own extractor: every entry resolved inside the container's root, no symlink followed out.
      await intoContainer(d.container!, d.path, () => extractTar(io.stdin!, dest, { ids: shift.toDisk }));
    });
    return;
  }
  if ((s.container === undefined) === (d.container === undefined)) {
    throw new UsageError('cp copies between a container and the host: one of SRC and DEST must be CONTAINER:PATH, e.g. tsbuild cp web:/etc/hosts ./hosts');
  }
  if (s.container !== undefined) {
    await inRoot(store, s.container, (root, shift) => {
      const from = resolveInRoot(root, s.path);
      if (!fs.existsSync(from)) throw new NotFoundError(`Could not find the file ${s.path} in container ${s.container}`, 'CP_NOT_FOUND');
      const st = fs.statSync(d.path, { throwIfNoEntry: false });
      if (!st && !fs.existsSync(path.dirname(path.resolve(d.path)))) throw new NotFoundError(`destination directory ${path.dirname(d.path)} does not exist`, 'CP_NOT_FOUND');
      const to = target(!!st, !!st?.isDirectory(), d.path, s.path);
      const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      copyTree(from, (rel) => path.join(to, rel), spec.archive ? shift.fromDisk : () => me);
    });
    return;
  }
  if (!fs.existsSync(s.path)) throw new NotFoundError(`no such file or directory: ${s.path}`, 'CP_NOT_FOUND');
  await inRoot(store, d.container!, async (root, shift) => {
    const destHost = resolveInRoot(root, d.path);
    const st = fs.statSync(destHost, { throwIfNoEntry: false });
    if (!st && !fs.existsSync(path.dirname(destHost))) throw new NotFoundError(`destination directory ${path.dirname(d.path)} does not exist in container ${d.container}`, 'CP_NOT_FOUND');
    const to = target(!!st, !!st?.isDirectory(), path.posix.normalize(d.path), s.path);
    // Each entry is resolved inside the container's root, never following its last component.
    const root0 = shift.toDisk({ uid: 0, gid: 0 });
    await intoContainer(d.container!, d.path, () => copyTree(s.path, (rel) => resolveInRoot(root, path.posix.join(to, rel), false), spec.archive ? shift.toDisk : () => root0));
  });
}

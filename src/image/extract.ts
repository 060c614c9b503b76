/**
 * Safe, streaming tar extraction, for ADD of local archives and for applying layers through a mounted
 * (merged) view. Every entry is placed relative to `root` with all symlinks resolved inside it: `..`
 * that would leave the root is an error, absolute names are taken as relative, a symlink planted by an
 * earlier entry (or already in the root) cannot redirect a later write outside, and hard links may only
 * point at files inside the root. File data is written as it streams; memory stays flat.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ArchiveError, readTar, type ReadHeader } from './tarread.js';
import { TsbuildError } from '../errors/index.js';
import { BATCH_MAX_FILE, BYTE_PATHS, FileBatch, mkdirInRoot, NewFileMeta, resolveInRoot, writeAllSync, WriteBehind } from '../fsutil/index.js';

export { ArchiveError };

export interface ExtractOptions {
  /** Treat OCI whiteouts (`.wh.`) as deletions: applying a layer. Otherwise they are ordinary files. */
  whiteouts?: boolean;
  /** Force ownership (ADD --chown); otherwise the archive's uid/gid, through `ids` when given. */
  owner?: { uid: number; gid: number };
  /** The on-disk ids of an archive's ids (a container with a user namespace of its own). */
  ids?: (i: { uid: number; gid: number }) => { uid: number; gid: number };
  onWarning?: (message: string) => void;
  /** Replace a symlink found on an entry's path with a directory instead of following it (layer stacking). */
  shadowSymlinks?: boolean;
  /**
   * Creates device nodes and fifos and sets extended attributes (Node can do neither): the sandbox
   * helper's `apply-meta`. Without it those entries are skipped with a warning.
   */
  applyMeta?: (ops: MetaOp[]) => void;
  /**
   * What this process may create (a rootless user namespace can make neither device nodes nor
   * trusted.* attributes): entries it may not are skipped with a warning, as rootless podman does.
   */
  may?: { devices: boolean; xattr: (name: string) => boolean };
}

export type MetaOp =
  | { op: 'mknod'; path: string | Buffer; mode: number; major: number; minor: number }
  | { op: 'setxattr'; path: string | Buffer; name: string; value: Buffer };

/** A path as the bytes the filesystem knows it by (extraction names paths as latin1 strings). */
const B = (p: string): Buffer => Buffer.from(p, 'latin1');
/** A name for messages: the bytes shown as UTF-8. */
const show = (p: string): string => B(p).toString('utf8');

const MAX_ENTRY = 2 ** 40;

/** Files from this size on are written by writeOverlapped; smaller ones in place (one syscall each, no thread hop). */
const LARGE_FILE = 4 << 20;
const writeAt = (fd: number, parts: Buffer[], pos: number) =>
  new Promise<number>((resolve, reject) => fs.writev(fd, parts, pos, (e, n) => (e ? reject(e) : resolve(n))));

/**
 * A large file's bytes written on the thread pool in 1 MiB writes, one in flight while the next is
 * decompressed and hashed. Written in place (16 KiB per gunzip chunk, on the main thread), a 512 MiB
 * layer took 33,000 blocking writes that stalled the download, inflation and hashing behind the
 * disk: 1.9 s of a 6.5 s pull's profile.
 */
async function writeOverlapped(fd: number, body: AsyncIterable<Buffer>): Promise<number> {
  const w = new WriteBehind((b, pos) => writeAt(fd, b, pos));
  try {
    for await (const chunk of body) await w.push(chunk);
  } catch (e) {
    // The caller closes the descriptor: never under a write still in flight.
    await w.abandon();
    throw e;
  }
  return w.end();
}

function cleanName(name: string): string {
  const n = path.posix.normalize('/' + name.replace(/^\.\/+/, '')).slice(1);
  return n;
}

/**
 * The name an entry is placed at, relative to the root; one that climbs out with `..` is refused.
 * The usual name ("./usr/bin/x", "usr/lib/") has nothing to resolve and is taken as it is: the
 * resolving below cost a layer of 20,000 small files 30 ms.
 */
export function checkName(raw: string): string {
  const rest = raw.startsWith('./') ? raw.slice(2) : raw;
  if (!rest.includes('..') && !rest.includes('//') && !rest.includes('/./') && rest[0] !== '/' && !rest.startsWith('./') && !rest.endsWith('/.') && rest !== '.') return rest;
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  let depth = 0;
  for (const p of parts) {
    depth += p === '..' ? -1 : 1;
    if (depth < 0) throw new ArchiveError(`archive entry "${show(raw)}" escapes the destination with "..": refusing to extract it`);
  }
  return cleanName(raw);
}

export async function extractTar(input: Readable, rootDir: string, opts: ExtractOptions = {}): Promise<{ entries: number }> {
  // Names are bytes from here to the filesystem (latin1 strings, Buffer paths): a name that is not
  // UTF-8 is created as it is in the archive.
  const root = Buffer.from(rootDir).toString('latin1');
  const dirTimes: [string, number][] = [];
  const parents = new Map<string, string>();
  // Names this archive made, for layers only: an opaque marker later in it leaves them alone.
  const created = new Set<string>();
  let entries = 0;
  const warn = opts.onWarning ?? (() => undefined);
  const nodes: { op: MetaOp; target: string; h: ReadHeader }[] = [];
  const xattrs: MetaOp[] = [];
  let xattrWarned = false;
  // `base`: the name's last part, which the caller has already.
  const place = (name: string, base: string): string => {
    if (opts.shadowSymlinks) {
      let cur = root;
      for (const part of path.posix.dirname(name).split('/').filter((x) => x !== '' && x !== '.')) {
        cur = path.join(cur, part);
        const st = fs.lstatSync(B(cur), { throwIfNoEntry: false });
        if (st && !st.isDirectory()) fs.rmSync(B(cur), { force: true });
        if (!st || !st.isDirectory()) {
          fs.mkdirSync(B(cur));
          born.clear();
        }
      }
      return path.join(cur, base);
    }
    // Parent directories resolved once per archive; any removal or replacement empties the cache,
    // so a directory swapped for a symlink later in the archive is resolved afresh (and refused).
    const dir = path.posix.dirname('/' + name);
    let parent = parents.get(dir);
    if (parent === undefined) {
      parent = mkdirInRoot(root, dir, 0o755, undefined, BYTE_PATHS);
      parents.set(dir, parent);
    }
    // path.join would normalize again what mkdirInRoot made and checkName cleaned.
    return parent.endsWith('/') ? parent + base : `${parent}/${base}`;
  };
  const replace = (target: string, keepDir: boolean) => {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(B(target));
    } catch {
      return;
    }
    if (keepDir && st.isDirectory()) return;
    parents.clear();
    born.clear();
    fs.rmSync(B(target), { recursive: true, force: true });
  };
  // Made first and replaced only when the name is taken (EEXIST), as GNU tar does: an lstat of every
  // name before creating it cost a layer of 20,000 small files a syscall and a thrown ENOENT each.
  const create = <T>(target: string, make: () => T): T => {
    try {
      return make();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    replace(target, false);
    return make();
  };
  // Files made here that already have their owner and mode skip fchown and fchmod (fsutil's
  // NewFileMeta). Keyed by the directory's host path; a directory's own entry, a replacement or a
  // whiteout forgets what was observed in it.
  const born = new NewFileMeta();
  // EINVAL: the id has no mapping in this user namespace (rootless with too small a range).
  const chown = (target: string, fn: () => void, uid: number, gid: number) => {
    try {
      fn();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      throw new ArchiveError(
        `cannot give "${show(target)}" owner ${uid}:${gid}: that id is not mapped in this user namespace. Rootless tsbuild maps the ids /etc/subuid and /etc/subgid give the user; add a range of 65536 (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER), then end the namespace with "tsbuild system migrate"`,
      );
    }
  };
  const owner = (h: ReadHeader): [number, number] => {
    const o = opts.owner ?? opts.ids?.({ uid: h.uid, gid: h.gid }) ?? { uid: h.uid, gid: h.gid };
    return [o.uid, o.gid];
  };
  // A directory's times are set once, at the end (its entries change them until then).
  const meta = (target: string, h: ReadHeader, kind: 'link' | 'dir' | 'node' = 'node') => {
    const [uid, gid] = owner(h);
    chown(target, () => fs.lchownSync(B(target), uid, gid), uid, gid);
    if (kind !== 'link') fs.chmodSync(B(target), h.mode & 0o7777);
    if (kind === 'link') fs.lutimesSync(B(target), h.mtime, h.mtime);
    else if (kind === 'node') fs.utimesSync(B(target), h.mtime, h.mtime);
  };
  const keepXattrs = (target: string, h: ReadHeader) => {
    const names = Object.keys(h.xattrs);
    if (names.length === 0) return;
    if (!opts.applyMeta) {
      if (!xattrWarned) warn(`extended attributes in the archive are not applied here (first: "${show(h.name)}")`);
      xattrWarned = true;
      return;
    }
    for (const n of names) {
      // The kernel allows user.* only on regular files and directories.
      if (n.startsWith('user.') && h.type !== 'file' && h.type !== 'dir') {
        warn(`skipping xattr ${n} on ${h.type} "${show(h.name)}": user.* attributes exist only on files and directories`);
        continue;
      }
      if (opts.may && !opts.may.xattr(n)) {
        warn(`skipping xattr ${n} on "${show(h.name)}": a rootless user namespace cannot set it`);
        continue;
      }
      xattrs.push({ op: 'setxattr', path: B(target), name: n, value: h.xattrs[n]! });
    }
  };
  // Set-id and sticky bits only through fchmod, after the fchown that would clear them.
  const openFile = (target: string, mode: number) =>
    create(target, () => fs.openSync(B(target), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, (mode & 0o7000) === 0 ? mode : 0o600));
  const finishFile = (fd: number, target: string, h: ReadHeader, written: number) => {
    if (written !== h.size) throw new ArchiveError(`archive entry "${show(h.name)}" is truncated: ${written} of ${h.size} bytes`);
    // Through the descriptor: no path resolution per call (chown before chmod: chown clears set-id bits).
    const mode = h.mode & 0o7777;
    const [uid, gid] = owner(h);
    if ((mode & 0o7000) !== 0 || !born.right(fd, target.slice(0, target.lastIndexOf('/')), uid, gid, mode)) {
      chown(target, () => fs.fchownSync(fd, uid, gid), uid, gid);
      fs.fchmodSync(fd, mode);
    }
    fs.futimesSync(fd, h.mtime, h.mtime);
  };
  const makeSmallFile = (target: string, h: ReadHeader, data: Buffer) => {
    const fd = openFile(target, h.mode & 0o7777);
    try {
      finishFile(fd, target, h, writeAllSync(fd, data));
    } finally {
      fs.closeSync(fd);
    }
  };
  // Small files are queued and made many at a time in C (fsutil's FileBatch), in archive order: one
  // call into C per batch instead of four or five binding calls per file. The queue is flushed before
  // any other kind of entry and before a new parent directory is resolved, so nothing queued can
  // depend on what comes after it. A file the batch could not make (its name taken: EEXIST; an id not
  // mapped) is made again here, before the batch goes on, which replaces or explains as above. Not
  // with shadowSymlinks, whose placing changes the tree for every entry.
  const batch = opts.shadowSymlinks ? null : FileBatch.open<{ target: string; h: ReadHeader }>((f, data) => makeSmallFile(f.target, f.h, data));
  try {
    for await (const entry of readTar(input, { names: 'bytes' })) {
      // `entry.body` only where it is read: a buffered entry makes it on demand.
      const { header: h, data } = entry;
      entries++;
      if (h.size > MAX_ENTRY) throw new ArchiveError(`archive entry "${show(h.name)}" claims ${h.size} bytes: refusing absurd sizes`);
      const name = checkName(h.name);
      if (name === '') continue;
      const base = path.posix.basename(name);
      const whiteout = opts.whiteouts === true && base.startsWith('.wh.');
      const batched = batch !== null && h.type === 'file' && data !== undefined && data.length === h.size && h.size <= BATCH_MAX_FILE && !whiteout;
      if (batch?.size && (!batched || !parents.has(path.posix.dirname('/' + name)))) batch.flush();
      if (whiteout) {
        parents.clear();
        born.clear();
        const dir = path.posix.dirname(name);
        if (base === '.wh..wh..opq') {
          const host = resolveInRoot(root, '/' + dir, true, 'in the image', BYTE_PATHS);
          if (fs.existsSync(B(host))) {
            for (const c of fs.readdirSync(B(host), { encoding: 'buffer' }).map((n) => n.toString('latin1'))) {
              const rel = dir === '.' ? c : `${dir}/${c}`;
              if (!created.has(rel)) fs.rmSync(B(path.join(host, c)), { recursive: true, force: true });
            }
          }
        } else {
          const victim = path.posix.join(dir, base.slice(4));
          fs.rmSync(B(resolveInRoot(root, '/' + victim, false, 'in the image', BYTE_PATHS)), { recursive: true, force: true });
        }
        continue;
      }
      const target = place(name, base);
      if (opts.whiteouts) created.add(name);
      switch (h.type) {
        case 'dir':
          try {
            fs.mkdirSync(B(target));
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
            replace(target, true);
            if (!fs.existsSync(B(target))) fs.mkdirSync(B(target));
          }
          meta(target, h, 'dir');
          born.forget(target);
          keepXattrs(target, h);
          dirTimes.push([target, h.mtime]);
          break;
        case 'symlink':
          create(target, () => fs.symlinkSync(B(h.linkname), B(target)));
          meta(target, h, 'link');
          keepXattrs(target, h);
          break;
        case 'hardlink': {
          const src = resolveInRoot(root, '/' + checkName(h.linkname), false, 'in the image', BYTE_PATHS);
          const st = fs.lstatSync(B(src), { throwIfNoEntry: false });
          if (!st || st.isDirectory()) throw new ArchiveError(`archive entry "${show(h.name)}" is a hard link to "${show(h.linkname)}", which is not a file inside the destination`);
          create(target, () => fs.linkSync(B(src), B(target)));
          break;
        }
        case 'file': {
          if (batched) {
            const [uid, gid] = owner(h);
            batch.push({ target, h }, target, data, h.mode & 0o7777, uid, gid, h.mtime);
          } else if (data) {
            makeSmallFile(target, h, data);
          } else {
            const fd = openFile(target, h.mode & 0o7777);
            try {
              let written = 0;
              if (h.size >= LARGE_FILE) written = await writeOverlapped(fd, entry.body);
              else for await (const chunk of entry.body) written += writeAllSync(fd, chunk);
              finishFile(fd, target, h, written);
            } finally {
              fs.closeSync(fd);
            }
          }
          keepXattrs(target, h);
          break;
        }
        case 'char':
        case 'block':
        case 'fifo': {
          if (!opts.applyMeta) {
            warn(`skipping ${h.type} "${show(h.name)}": device nodes and fifos are not created here`);
            break;
          }
          if (h.type !== 'fifo' && opts.may && !opts.may.devices) {
            warn(`skipping ${h.type} device "${show(h.name)}": a rootless user namespace cannot create device nodes (the container gets the host's standard ones)`);
            break;
          }
          replace(target, false);
          const kind = h.type === 'char' ? fs.constants.S_IFCHR : h.type === 'block' ? fs.constants.S_IFBLK : fs.constants.S_IFIFO;
          nodes.push({ op: { op: 'mknod', path: B(target), mode: kind | (h.mode & 0o7777), major: h.devmajor, minor: h.devminor }, target, h });
          break;
        }
        default:
          warn(`skipping "${show(h.name)}" of unsupported type ${JSON.stringify(h.flag)}`);
      }
    }
    batch?.flush();
  } catch (e) {
    if (e instanceof TsbuildError) throw e;
    throw new ArchiveError(`extraction failed: ${(e as Error).message}`);
  }
  if (nodes.length) {
    opts.applyMeta!(nodes.map((n) => n.op));
    for (const n of nodes) {
      meta(n.target, n.h);
      keepXattrs(n.target, n.h);
    }
  }
  if (xattrs.length) opts.applyMeta!(xattrs);
  for (const [d, t] of dirTimes.reverse()) fs.utimesSync(B(d), t, t);
  return { entries };
}

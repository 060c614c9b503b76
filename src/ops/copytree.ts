/**
 * Writing one source tree into the destination: each entry replaces what is in its way (never through
 * a symlink there), then gets the COPY's owner, mode and the source's times.
 */
import fs from 'node:fs';
import { writeAllSync, type NewFileMeta } from '../fsutil/index.js';
import { applyMeta } from '../runtime/index.js';
import type { ModeFn } from './chmod.js';
import { joinHost, sourceEntries, type HostPath } from './copysource.js';
import { sameTime, type CopyReuse, type TimesRecorder } from './copyreuse.js';

export interface Owner {
  uid: number;
  gid: number;
}

export interface CopyCtx {
  dstRoot: string;
  owner: Owner;
  chmod?: ModeFn;
  ignored: (rel: string) => boolean;
  excluded: (rel: string) => boolean;
  signal: AbortSignal;
  /** Writing on the previous result of the same step: only what differs is written. */
  reuse?: CopyReuse;
  /** Records the time each regular file gets, for the step's next COPY. */
  times?: TimesRecorder;
  /** The mode a regular file of this source mode gets (--chmod, or its own). */
  modeOfFile: (mode: number) => number;
  /** What new files in each directory are born with, observed (their fchown and fchmod skipped when right). */
  created: NewFileMeta;
  /**
   * `dstRoot` is an overlay mount and this is its upper directory: what goes below a directory the
   * copy has just made is written here (`belowMade`), not through the mount.
   */
  upper?: string;
}

/**
 * Where the entries of `dir`, a directory this copy has just made, are written. Nothing of a lower
 * layer can show below it (overlay made it in the upper directory, opaque if it covered a whiteout),
 * so the upper directory holds exactly what the mount would show, and writing there skips overlay's
 * own work per entry: its lookup in every layer, its inode and dentry beside the real ones. A COPY
 * of 20,000 small files into a new directory: see docs/performance.md. Not on the previous result
 * (`reuse`), whose entries are compared with the layers below.
 */
function belowMade(dir: HostPath, c: CopyCtx): HostPath {
  if (c.upper === undefined || c.reuse) return dir;
  const root = c.dstRoot;
  if (typeof dir === 'string') return dir.startsWith(root + '/') ? c.upper + dir.slice(root.length) : dir;
  const prefix = Buffer.from(root + '/');
  // Byte offsets: a store path that is not ASCII is longer in bytes than in characters.
  return dir.subarray(0, prefix.length).equals(prefix) ? Buffer.concat([Buffer.from(c.upper + '/'), dir.subarray(prefix.length)]) : dir;
}

/** The directory a path names an entry of, as a memo key (a byte path as latin1, one char per byte). */
const dirKey = (p: HostPath): string => (typeof p === 'string' ? p.slice(0, p.lastIndexOf('/')) : p.subarray(0, p.lastIndexOf(0x2f)).toString('latin1'));
const ownKey = (p: HostPath): string => (typeof p === 'string' ? p : p.toString('latin1'));

const modeOf = (st: fs.Stats, c: CopyCtx) => (st.isDirectory() ? (c.chmod ? c.chmod(st.mode, true) : st.mode & 0o7777) : c.modeOfFile(st.mode));

/** A directory already there whose owner, mode or time differ from what the copy gives it. */
function metaDiffers(target: HostPath, st: fs.Stats, c: CopyCtx): boolean {
  const t = fs.lstatSync(target);
  return t.uid !== c.owner.uid || t.gid !== c.owner.gid || (t.mode & 0o7777) !== modeOf(st, c) || !sameTime(t, st);
}

function setMeta(target: HostPath, st: fs.Stats, c: CopyCtx, isLinkEntry: boolean): void {
  fs.lchownSync(target, c.owner.uid, c.owner.gid);
  if (!isLinkEntry) {
    fs.chmodSync(target, modeOf(st, c));
    fs.utimesSync(target, st.atime, st.mtime);
  }
}

const SMALL_FILE = 256 * 1024;

/**
 * A regular file and its metadata. A small one is read in one call and written through one open
 * descriptor (owner, mode and times set on it): a COPY of many small files spends its time in path
 * lookups, which through an overlay cost one per layer. Owner before mode, since chown clears setuid.
 */
function copyFile(src: HostPath, target: HostPath, st: fs.Stats, c: CopyCtx): void {
  if (st.size > SMALL_FILE) {
    fs.copyFileSync(src, target);
    setMeta(target, st, c, false);
    return;
  }
  const data = fs.readFileSync(src);
  const mode = modeOf(st, c);
  // Set-id and sticky bits only through fchmod, after the fchown that would clear them.
  const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, (mode & 0o7000) === 0 ? mode : 0o600);
  try {
    writeAllSync(fd, data);
    // A file born with its owner and mode (root's COPY of 20,000 files into fresh directories: all
    // but the first of each directory) skips both calls: 40,000 of a cold build's system calls.
    if ((mode & 0o7000) !== 0 || !c.created.right(fd, dirKey(target), c.owner.uid, c.owner.gid, mode)) {
      fs.fchownSync(fd, c.owner.uid, c.owner.gid);
      fs.fchmodSync(fd, mode);
    }
    fs.futimesSync(fd, st.atime, st.mtime);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replaces whatever is at `target` (never writing through a symlink that is there). */
export function clearTarget(target: HostPath, keepDir: boolean): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(target);
  } catch {
    return;
  }
  if (st.isDirectory() && keepDir) return;
  fs.rmSync(target, { recursive: true, force: true });
}

/**
 * Copies one entry to an already-resolved host path. Children go straight into the directory just
 * created or checked (no re-resolution per file): a name inside it can only be a symlink if it already
 * existed, and clearTarget replaces such a link instead of following it. Names that are not UTF-8 are
 * carried as bytes (HostPath), as BuildKit carries them.
 */
export function copyTo(srcHost: HostPath, srcRel: string, target: HostPath, c: CopyCtx, fresh = false): void {
  if (c.signal.aborted) throw c.signal.reason;
  if (c.reuse && !fresh) {
    // Known unchanged from the key's walk and the last COPY's record: not even an lstat here.
    const t = c.reuse.knownFile(srcHost, srcRel, target, c.owner, c.modeOfFile);
    if (t !== undefined) {
      c.reuse.visit(target);
      c.times?.note(target, t);
      return;
    }
  }
  const st = fs.lstatSync(srcHost);
  // device nodes and sockets in a context are skipped, as BuildKit does (tar cannot hold a socket)
  if (!st.isDirectory() && !st.isSymbolicLink() && !st.isFile() && !st.isFIFO()) return;
  c.reuse?.visit(target);
  if (c.times && st.isFile()) c.times.note(target, st.mtimeMs);
  if (c.reuse && !fresh && !st.isDirectory() && c.reuse.keep(srcHost, srcRel, target, st, { ...c.owner, mode: modeOf(st, c) })) return;
  // In a directory this copy just made nothing is in the way: no lookup for it (through an overlay, a
  // name that is not there is looked up in every layer).
  if (!fresh) clearTarget(target, st.isDirectory());
  if (st.isDirectory()) {
    const made = fresh || !fs.existsSync(target);
    if (made) {
      fs.mkdirSync(target);
      c.created.forget(ownKey(target));
    }
    const into = made ? belowMade(target, c) : target;
    for (const e of sourceEntries(srcHost)) {
      const childRel = srcRel === '' ? e.name : `${srcRel}/${e.name}`;
      if (c.ignored(childRel) || c.excluded(childRel)) continue;
      copyTo(joinHost(srcHost, e), childRel, joinHost(into, e), c, made);
    }
    // On the previous result a directory is touched only when it differs (a chown would copy it up).
    if (made || !c.reuse || metaDiffers(target, st, c)) {
      setMeta(target, st, c, false);
      // Its owner and mode are what its next new files inherit (a set-group-id bit).
      c.created.forget(ownKey(target));
    }
  } else if (st.isSymbolicLink()) {
    fs.symlinkSync(fs.readlinkSync(srcHost, { encoding: 'buffer' }), target);
    setMeta(target, st, c, true);
  } else if (st.isFile()) {
    copyFile(srcHost, target, st, c);
  } else if (st.isFIFO()) {
    // A FIFO is copied as a FIFO, as BuildKit's copy does (Node cannot mkfifo: the helper makes it).
    applyMeta([{ op: 'mknod', path: target, mode: fs.constants.S_IFIFO | (st.mode & 0o7777), major: 0, minor: 0 }]);
    setMeta(target, st, c, false);
  }
}

/**
 * The one layer differ. It compares a new tree with its parent's (`lower`), entry by entry: an entry is in
 * the layer when it is new or changed (type, mode, owner, size, link target, device, xattrs, or content
 * when sizes match but times differ); a directory when it changed itself or something under it did; a
 * `.wh.<name>` for each entry that is gone. Sockets are left out (tar cannot hold them), as Docker does.
 *
 * Two ways to see the new tree, one result:
 * - full trees (native, btrfs): every directory of `upper` lists all its entries;
 * - an overlay upperdir: `upper` holds only what was written (copy-ups included), deletions are 0/0
 *   character devices, and a directory lists all its entries only when overlay marked it opaque (or
 *   below such a one). fuse-overlayfs's marks count too: a `.wh..wh..opq` file makes its directory
 *   opaque, and a `.wh.<name>` file is a whiteout. What the upperdir leaves out is the lower entry, unchanged.
 * Both compare against the same lower view, so one Dockerfile gives byte-identical layers on every
 * driver: a directory overlay merely copied up is not emitted, and an opaque directory becomes the
 * whiteouts of the lower entries it hides, as a full-tree comparison finds them.
 *
 * Paths are handled as bytes (latin1 strings, one character per byte) so names that are not UTF-8
 * survive into the layer; entries come in byte order of names, as Go's sort.Strings gives.
 */
import fs from 'node:fs';
import { byText } from '../fsutil/index.js';
import { encodeHeader, END_OF_ARCHIVE, padding, type TarHeader } from './tar.js';
import type { LayerSplice } from './tarsplice.js';
import { entryBlocks } from './diff.js';

/** Extended attributes by relative path (latin1, as the walker names paths). */
export type XattrMap = Map<string, Record<string, Buffer>>;

export interface TreeDiffOptions {
  /** Clamp every mtime to at most this (seconds), for reproducible layers. */
  sourceDateEpoch?: number;
  xattrs?: { lower?: XattrMap; upper: XattrMap };
  /**
   * `upper` is an overlay upperdir; `opaque` names the directories overlay marked opaque. `below`: more
   * upperdirs under it, top first, whose changes are in the same layer (a COPY written as only its
   * changes on its previous result): the walk sees them merged as overlay would, over `lower`.
   */
  overlay?: { opaque: Set<string>; below?: UpperDir[] };
  /**
   * The files of the stack's upperdir number `layer` are in an earlier layer's blob too: their content
   * is read from there when their header is byte for byte the one there (tarsplice.ts).
   */
  splice?: { layer: number; from: LayerSplice };
}

/**
 * What the differ reads of an entry's lstat: fs.Stats has it, and so does the smaller `KeptStat`.
 * `inferred`: not an lstat but what the caller knows the entry to be (a file a COPY kept on its last
 * result); it is used only when its header is byte for byte the spliced layer's, else the entry is
 * lstat'ed.
 */
export type EntryStat = Pick<fs.Stats, 'mode' | 'uid' | 'gid' | 'size' | 'mtimeMs' | 'nlink' | 'dev' | 'ino' | 'rdev' | 'isFile' | 'isDirectory' | 'isSymbolicLink' | 'isCharacterDevice' | 'isBlockDevice' | 'isFIFO' | 'isSocket'> & { inferred?: true };

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } = fs.constants;

/** The numbers of an lstat that the differ reads. */
export type StatNumbers = Pick<fs.Stats, 'mode' | 'uid' | 'gid' | 'size' | 'mtimeMs' | 'nlink' | 'dev' | 'ino' | 'rdev'>;

/** An lstat result kept for later: nine numbers, where an fs.Stats held for later costs over 1 KB. */
class KeptStat implements EntryStat {
  readonly inferred: true | undefined;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeMs: number;
  readonly nlink: number;
  readonly dev: number;
  readonly ino: number;
  readonly rdev: number;
  constructor(st: StatNumbers, inferred: boolean) {
    this.inferred = inferred ? true : undefined;
    this.mode = st.mode;
    this.uid = st.uid;
    this.gid = st.gid;
    this.size = st.size;
    this.mtimeMs = st.mtimeMs;
    this.nlink = st.nlink;
    this.dev = st.dev;
    this.ino = st.ino;
    this.rdev = st.rdev;
  }
  isFile(): boolean {
    return (this.mode & S_IFMT) === S_IFREG;
  }
  isDirectory(): boolean {
    return (this.mode & S_IFMT) === S_IFDIR;
  }
  isSymbolicLink(): boolean {
    return (this.mode & S_IFMT) === S_IFLNK;
  }
  isCharacterDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFCHR;
  }
  isBlockDevice(): boolean {
    return (this.mode & S_IFMT) === S_IFBLK;
  }
  isFIFO(): boolean {
    return (this.mode & S_IFMT) === S_IFIFO;
  }
  isSocket(): boolean {
    return (this.mode & S_IFMT) === S_IFSOCK;
  }
}

/**
 * An lstat result in the form a caller keeps for `UpperDir.stats`; `inferred`: numbers the caller
 * knows the entry to have without an lstat (see EntryStat).
 */
export const keptStat = (st: StatNumbers, inferred = false): EntryStat => new KeptStat(st, inferred);

/** One upperdir of a stack: its directory, the directories overlay marked opaque in it, its xattrs. */
export interface UpperDir {
  dir: string;
  opaque: Set<string>;
  xattrs: XattrMap;
  /**
   * Entries of this upperdir the caller has already lstat'ed, by walk path: only for a directory that
   * cannot change (a committed snapshot's), where a second lstat would give the same answer.
   */
  stats?: ReadonlyMap<string, EntryStat>;
}

/** A path of the walk (latin1) as the bytes the filesystem knows it by. */
export const fsPath = (p: string): Buffer => Buffer.from(p, 'latin1');

const binary = (p: string) => Buffer.from(p).toString('latin1');

/** The entry at `p`, or undefined when there is none: ENOENT, or ENOTDIR when a file of the lower tree
 * stands where the upper has a directory (`RUN rm /x && mkdir /x && touch /x/y` failed on it). */
function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(fsPath(p), { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

function names(dir: string): string[] {
  return fs.readdirSync(fsPath(dir), { encoding: 'buffer' }).map((b) => b.toString('latin1'));
}

function sameXattrs(a: Record<string, Buffer> | undefined, b: Record<string, Buffer> | undefined): boolean {
  const ka = Object.keys(a ?? {}).sort();
  const kb = Object.keys(b ?? {}).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a![k]!.equals(b![k]!));
}

function sameContent(a: string, b: string): boolean {
  const fa = fs.openSync(fsPath(a), 'r');
  const fb = fs.openSync(fsPath(b), 'r');
  try {
    const ba = Buffer.allocUnsafe(1 << 16);
    const bb = Buffer.allocUnsafe(1 << 16);
    for (;;) {
      const na = fs.readSync(fa, ba);
      const nb = fs.readSync(fb, bb);
      if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
      if (na === 0) return true;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}

function changed(lowerPath: string, l: fs.Stats, upperPath: string, u: EntryStat): boolean {
  if (l.mode !== u.mode || l.uid !== u.uid || l.gid !== u.gid) return true;
  if (u.isSymbolicLink()) return !fs.readlinkSync(fsPath(lowerPath), { encoding: 'buffer' }).equals(fs.readlinkSync(fsPath(upperPath), { encoding: 'buffer' }));
  if (u.isFile()) return l.size !== u.size || (l.mtimeMs !== u.mtimeMs && !sameContent(lowerPath, upperPath));
  if (u.isCharacterDevice() || u.isBlockDevice()) return l.rdev !== u.rdev;
  return false;
}

const OPAQUE_FILE = '.wh..wh..opq';
const isWhiteoutDevice = (st: EntryStat) => st.isCharacterDevice() && st.rdev === 0;

/** An entry of the layer: its stat, where its bytes are (latin1) and its xattrs; or a deletion. */
type Change = { rel: string; kind: 'entry'; st: EntryStat; host: string; layer: number; xattrs?: Record<string, Buffer> } | { rel: string; kind: 'whiteout' };

/**
 * The changes, lazily, in layer order: only the directories on the current path and their sorted
 * names are held, so memory does not grow with the number of entries (the layer's bytes are streamed
 * by diffTrees).
 */
export function* treeChanges(lowerRoot: string | undefined, upperRoot: string, opts: TreeDiffOptions = {}): Generator<Change> {
  const low = lowerRoot === undefined ? undefined : binary(lowerRoot);
  const xa = opts.xattrs;
  const overlay = opts.overlay;
  const stack = [
    { dir: binary(upperRoot), opaque: overlay?.opaque ?? new Set<string>(), xattrs: xa?.upper },
    ...(overlay?.below ?? []).map((b) => ({ dir: binary(b.dir), opaque: b.opaque, xattrs: b.xattrs as XattrMap | undefined, stats: b.stats })),
  ] as { dir: string; opaque: Set<string>; xattrs?: XattrMap; stats?: ReadonlyMap<string, EntryStat> }[];
  /**
   * The changes under `rel`; `complete`: the upper directory lists every entry it has. `layers`: the
   * stack's upperdirs that hold `rel` as a directory merged into the one seen (top first).
   */
  function* walk(rel: string, complete: boolean, layers: number[]): Generator<Change> {
    /** For each name, the topmost upperdir holding it. */
    const provider = new Map<string, number>();
    /** Names whited out by a `.wh.<name>` file, the form fuse-overlayfs falls back to without mknod. */
    const whiteFiles = new Set<string>();
    for (const i of layers) {
      let here = names(`${stack[i]!.dir}/${rel}`);
      if (i === 0 && overlay && low !== undefined) {
        // fuse-overlayfs marks an opaque directory with a `.wh..wh..opq` file (and a `.wh..opq`
        // whiteout); neither is content. (Without a lower this is a directory of new files, not an
        // upperdir: its names are kept as they are.)
        if (here.includes(OPAQUE_FILE) && lstat(`${low}/${rel}`)?.isDirectory()) complete = true;
        here = here.filter((n) => n !== OPAQUE_FILE && n !== '.wh..opq').map((n) => {
          if (!n.startsWith('.wh.') || !fs.lstatSync(fsPath(`${stack[0]!.dir}/${rel === '' ? '' : `${rel}/`}${n}`)).isFile()) return n;
          whiteFiles.add(n.slice(4));
          return n.slice(4);
        });
      }
      for (const n of here) if (!provider.has(n)) provider.set(n, i);
    }
    let all = [...provider.keys()];
    // Where the lower tree has no such directory (a COPY into a new one), its entries are not looked
    // up one by one: through an overlay each miss is a lookup in every layer.
    const lowDir = low !== undefined && (rel === '' || lstat(`${low}/${rel}`)?.isDirectory() === true);
    if (complete && lowDir) {
      all = [...new Set([...all, ...names(`${low}/${rel}`)])];
    }
    // Names are latin1 (a character per byte): code-unit order is byte order.
    all.sort(byText);
    for (const name of all) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const lst = lowDir ? lstat(`${low}/${r}`) : undefined;
      const li = provider.get(name);
      if (li === undefined || (li === 0 && whiteFiles.has(name))) {
        if (lst) yield { rel: r, kind: 'whiteout' };
        continue;
      }
      const layer = stack[li]!;
      const host = `${layer.dir}/${r}`;
      const st = layer.stats?.get(r) ?? fs.lstatSync(fsPath(host));
      if (overlay && isWhiteoutDevice(st)) {
        if (lst) yield { rel: r, kind: 'whiteout' };
        continue;
      }
      if (st.isSocket()) continue;
      const xattrs = layer.xattrs?.get(r);
      const self = !lst || changed(`${low}/${r}`, lst, host, st) || (xa !== undefined && !sameXattrs(xa.lower?.get(r), xattrs));
      const entry: Change = { rel: r, kind: 'entry', st, host, layer: li, xattrs };
      if (st.isDirectory()) {
        // The upperdirs under this one that merge into it, down to an opaque one or to a name that is
        // not a directory there (which hides everything under it, as in overlay).
        const sub = [li];
        let hidesLower = layer.opaque.has(r);
        for (const j of layers) {
          if (j <= li || hidesLower) continue;
          const s = lstat(`${stack[j]!.dir}/${r}`);
          if (!s) continue;
          if (!s.isDirectory()) {
            hidesLower = true;
            break;
          }
          sub.push(j);
          hidesLower = stack[j]!.opaque.has(r);
        }
        // A file replaced by a directory has no lower children: the walk then finds none to hide.
        const below = walk(r, !overlay || complete || hidesLower || !lst?.isDirectory(), sub);
        if (self) {
          yield entry;
          yield* below;
          continue;
        }
        // An unchanged directory is in the layer only when something under it is.
        const first = below.next();
        if (first.done) continue;
        yield entry;
        yield first.value;
        yield* below;
      } else if (self) {
        yield entry;
      }
    }
  }
  // An upperdir's root lists only what changed; a full tree's, everything.
  yield* walk('', !overlay, stack.map((_, i) => i));
}

export async function* diffTrees(lowerRoot: string | undefined, upperRoot: string, opts: TreeDiffOptions = {}): AsyncGenerator<Buffer> {
  const clamp = (t: number) => (opts.sourceDateEpoch !== undefined ? Math.min(t, opts.sourceDateEpoch) : t);
  const links = new Map<string, Buffer>();
  for (const e of treeChanges(lowerRoot, upperRoot, opts)) {
    const slash = e.rel.lastIndexOf('/');
    if (e.kind === 'whiteout') {
      const wh = `${e.rel.slice(0, slash + 1)}.wh.${e.rel.slice(slash + 1)}`;
      yield encodeHeader({ name: fsPath(wh), type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: clamp(0) });
      continue;
    }
    let st = e.st;
    const fields = (s: EntryStat): Omit<TarHeader, 'type'> => ({ name: fsPath(e.rel), mode: s.mode & 0o7777, uid: s.uid, gid: s.gid, size: 0, mtime: clamp(Math.floor(s.mtimeMs / 1000)), xattrs: e.xattrs });
    let base = fields(st);
    if (st.isDirectory()) {
      yield encodeHeader({ ...base, type: 'dir' });
      continue;
    }
    if (opts.splice?.layer === e.layer && st.isFile() && st.nlink === 1) {
      const header = encodeHeader({ ...base, type: 'file', size: st.size });
      const body = opts.splice.from.content(e.rel, header);
      if (body) {
        yield header;
        yield* body;
        yield padding(st.size);
        continue;
      }
    }
    if (st.inferred) {
      // A guess the earlier layer did not confirm: the entry as it is.
      st = fs.lstatSync(fsPath(e.host));
      base = fields(st);
    }
    yield* entryBlocks(base, fsPath(e.host), st, links);
  }
  yield END_OF_ARCHIVE;
}

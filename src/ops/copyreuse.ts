/**
 * A COPY from the context written as only its changes: when the same step's previous result sits on
 * the same parent and only context files differ (edit one file of 20,000, rebuild), the new snapshot is
 * prepared on that result, the files whose content, metadata and destination are as they were there
 * are left alone, what the previous copy wrote and this one does not is removed, and the layer is made
 * of both upperdirs merged (layer.ts `squash`), byte for byte the layer a full copy gives.
 *
 * A deletion that would uncover a parent's file refuses (the step then copies in full); names that are
 * not UTF-8 are always written.
 */
import fs from 'node:fs';
import type { CacheIndex, CopyTimes } from '../cache/index.js';
import type { OpSpec, OpsEnv } from './types.js';
import { BASE_LAYER, layerParent, SQUASHED } from './layer.js';
import { keptStat, MediaType, type EntryStat } from '../image/index.js';
import type { HostPath } from './copysource.js';

/** The same step's previous result, and the key material it and this run were made from. */
export interface PreviousCopy {
  /**
   * The full copy the new snapshot is prepared on, and whose own changes its layer joins: the previous
   * result itself, or the full copy that one was prepared on. Never deeper: each edit after a full
   * copy writes what differs from it, so overlay's lowers do not grow with the edits.
   */
  base: string;
  /** The full copy's layer blob (uncompressed), whose bytes the new layer reuses where it can. */
  baseLayer?: string;
  /**
   * When the previous result was itself written on `base`: its own upperdir, which names what differs
   * there from `base` (the key's material describes the previous result, not `base`, for those paths).
   */
  mask?: string;
  before: Record<string, string>;
  now: Record<string, string>;
  /**
   * The context lost an entry since the last build (deleted, ignored, or a directory turned into a
   * file): the end looks for what `base` holds and this copy does not write. It also looks when the
   * last build, written on `base`, removed something of it (a whiteout in `mask`). Otherwise every
   * path `base` holds is written or kept again.
   */
  lost: boolean;
  /**
   * The time the last COPY of this step gave each regular file of its result (walk path → whole
   * milliseconds), when it recorded them for that very result: a file whose source has that time
   * still, and whose checksum is unchanged, is kept without an lstat of the base (see `knownFile`).
   */
  times?: Record<string, number>;
  /** This build's walk of the context: each regular file's mtime in whole milliseconds, by material key. */
  walk?: Record<string, number>;
}

const walks = new WeakMap<object, Record<string, number>>();
/** The file times the key's context walk saw, kept with the key's material for a COPY on its last result. */
export function noteWalkTimes(material: object, times: Record<string, number>): void {
  walks.set(material, times);
}

/**
 * The previous result of this COPY, when reusing it is exact: a plain COPY from the context on
 * overlayfs, whose key differs from the last one only in context files (`file:` entries), whose record
 * and snapshot still exist, on the very parent this run has.
 */
export async function previousCopy(env: OpsEnv, index: CacheIndex, stepId: string | undefined, op: OpSpec, now: { key: string; material: Record<string, string> }, parent: string | undefined): Promise<PreviousCopy | undefined> {
  if (op.kind !== 'copy' || op.verb !== 'COPY' || op.link || op.contents.length > 0 || op.parents) return undefined;
  if (env.snapshotter.driver !== 'overlayfs' || !stepId) return undefined;
  const last = index.lastStep(stepId);
  if (!last || last.key === now.key) return undefined;
  const keys = new Set([...Object.keys(last.material), ...Object.keys(now.material)]);
  for (const k of keys) if (!k.startsWith('file:') && last.material[k] !== now.material[k]) return undefined;
  const rec = index.lookup(last.key);
  if (!rec?.snapshot || !rec.layer) return undefined;
  try {
    if ((await layerParent(env.snapshotter, rec.snapshot)) !== parent) return undefined;
    const info = await env.snapshotter.stat(rec.snapshot);
    const squashed = Number(info.labels[SQUASHED] ?? 0);
    if (squashed > 1 || (squashed === 1 && info.parent === undefined)) return undefined;
    const lost = Object.keys(last.material).some((k) => k.startsWith('file:') && !(k in now.material));
    const t = index.lastCopyTimes(stepId);
    const times = t?.snapshot === rec.snapshot ? t.times : undefined;
    const walk = walks.get(now.material);
    if (squashed === 0) return { base: rec.snapshot, baseLayer: rec.layer.descriptor.mediaType === MediaType.layer ? rec.layer.descriptor.digest : undefined, before: last.material, now: now.material, lost, times, walk };
    return { base: info.parent!, baseLayer: info.labels[BASE_LAYER], mask: await env.snapshotter.upperDir?.(rec.snapshot), before: last.material, now: now.material, lost, times, walk };
  } catch {
    // gone or changing under another build: copy in full
    return undefined;
  }
}

/**
 * Whether `written` has the time a copy of `src` is given: the source's mtime in whole milliseconds (a
 * Date), which reaches the kernel as float seconds, so it comes back up to a microsecond off.
 */
export function sameTime(written: fs.Stats, src: fs.Stats): boolean {
  return Math.round(written.mtimeMs) === src.mtime.getTime();
}

/**
 * Kept only for a copy of at most this many entries (about 150 bytes each with its name: 5 MB); a
 * larger copy keeps none and its differ lstats again. Peak RSS of a one-file edit of 100,000 files,
 * 5 runs each: 305-357 MB before any were kept, 334-400 MB with this cap, 321-370 MB keeping none
 * (the spread is the GC's): no difference the runs can resolve.
 */
const MAX_KEPT_STATS = 32_768;

/** Why a reuse stopped: the step then copies in full. */
export class ReuseRefused extends Error {}

const ASCII = /^[\x00-\x7f]*$/;
/** A path's bytes as a latin1 string: an ASCII string is that already (no Buffer made: three a file). */
const latin1 = (p: HostPath) => (typeof p === 'string' && ASCII.test(p) ? p : (typeof p === 'string' ? Buffer.from(p) : p).toString('latin1'));
/** `dir/rel`, `rel` a walk path (latin1: one character per byte of the name). */
const under = (dir: string, rel: string) => (rel === '' ? Buffer.from(dir) : Buffer.concat([Buffer.from(dir), Buffer.from('/' + rel, 'latin1')]));
const WHITEOUT = (st: fs.Stats) => st.isCharacterDevice() && st.rdev === 0;

/** An entry at `rel` under `dir`, or undefined (none, or a file on the way: ENOTDIR). */
function lstatUnder(dir: string, rel: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(under(dir, rel), { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** Every path under `dir` (walk paths, latin1), into `out`; whether one is a whiteout (a device). */
function listTree(dir: string, rel: string, out: Set<string>): boolean {
  let whiteout = false;
  for (const e of fs.readdirSync(under(dir, rel), { encoding: 'buffer', withFileTypes: true })) {
    const r = rel === '' ? e.name.toString('latin1') : `${rel}/${e.name.toString('latin1')}`;
    out.add(r);
    if (e.isCharacterDevice()) whiteout = true;
    if (e.isDirectory() && listTree(dir, r, out)) whiteout = true;
  }
  return whiteout;
}

/** `rel` and each directory above it (walk paths). */
function* selfAndAncestors(rel: string): Generator<string> {
  for (let p = rel; p !== ''; p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) yield p;
}

/**
 * What copytree asks while it writes on the base: whether an entry is already there as this copy would
 * write it, and (at the end) what the base holds that this copy did not write.
 */
export class CopyReuse {
  private readonly visited = new Set<string>();
  /**
   * Files and links left as the base has them (`byTimes`: of them, known so by the times the last
   * COPY recorded, without a look at the base), and entries removed (for the step's log).
   */
  readonly counts = { kept: 0, byTimes: 0, removed: 0 };
  private readonly root: string;
  constructor(
    dstRoot: string,
    /** The base's own upperdir. */
    private readonly base: string,
    private readonly prev: PreviousCopy,
  ) {
    this.root = latin1(dstRoot);
    // What the last build wrote on the base: a few entries, listed once (not a lookup per file).
    if (prev.mask !== undefined) this.removals = listTree(prev.mask, '', this.masked);
  }
  private readonly masked = new Set<string>();
  /** The last build, written on the base, removed some of it. */
  private removals = false;

  /** Whether `removeStale` can find anything. */
  get mayHaveStale(): boolean {
    return this.prev.lost || this.removals;
  }

  private rel(target: HostPath): string {
    const t = latin1(target);
    if (!t.startsWith(this.root + '/')) throw new ReuseRefused(`internal: ${t} is outside the destination`);
    return t.slice(this.root.length + 1);
  }

  /** Records that this copy writes `target` (so the end does not remove it). */
  visit(target: HostPath): void {
    this.visited.add(this.rel(target));
  }

  /**
   * The base's entries this copy lstat'ed, by walk path, for the layer's differ (the base is a
   * committed snapshot: they cannot change). Empty past MAX_KEPT_STATS: the differ looks again.
   */
  readonly baseStats = new Map<string, EntryStat>();
  private tooManyStats = false;

  /** The base's own entry at `rel` (a deletion there is none). */
  private previous(rel: string): { st: fs.Stats; host: Buffer } | undefined {
    const st = lstatUnder(this.base, rel);
    if (st) this.remember(rel, keptStat(st));
    return st && !WHITEOUT(st) ? { st, host: under(this.base, rel) } : undefined;
  }

  private remember(rel: string, st: EntryStat): void {
    if (this.tooManyStats) return;
    this.baseStats.set(rel, st);
    // A copy this large keeps none: its peak memory is what the cap is for.
    if (this.baseStats.size > MAX_KEPT_STATS) {
      this.tooManyStats = true;
      this.baseStats.clear();
    }
  }

  /**
   * True when the base holds `target` exactly as this copy would write it from `src`: the same content
   * (the key's checksum of the context file, unchanged since the last build, which the base's entry is
   * when the last build did not rewrite it), type, size, owner, mode and mtime.
   */
  private unchanged(srcHost: HostPath, srcRel: string, target: HostPath, st: fs.Stats, want: { uid: number; gid: number; mode: number }): boolean {
    if (typeof srcHost !== 'string' || typeof target !== 'string') return false;
    const k = `file:${srcRel === '' ? '.' : srcRel}`;
    const sum = this.prev.now[k];
    if (sum === undefined || sum !== this.prev.before[k]) return false;
    const rel = this.rel(target);
    if (this.masked.has(rel)) return false;
    const p = this.previous(rel);
    if (!p || p.st.uid !== want.uid || p.st.gid !== want.gid) return false;
    if (st.isSymbolicLink()) return p.st.isSymbolicLink() && fs.readlinkSync(p.host, { encoding: 'buffer' }).equals(fs.readlinkSync(srcHost, { encoding: 'buffer' }));
    if (!st.isFile() || !p.st.isFile()) return false;
    return p.st.size === st.size && (p.st.mode & 0o7777) === want.mode && sameTime(p.st, st);
  }

  /**
   * A regular file kept before its source is even lstat'ed: its checksum is the last build's, and the
   * time this build's walk of the context saw is the one the last COPY recorded for it. The last
   * result holds the file as that COPY wrote or kept it (for an unmasked path, the base's entry), so
   * the base's entry is what this copy would write (`unchanged` above, from what the key's material
   * and the walk already know). The differ gets an `inferred` stat for it, which it checks against
   * the base's layer. Returns the time, or undefined (then `keep` decides, with lstats).
   */
  knownFile(srcHost: HostPath, srcRel: string, target: HostPath, owner: { uid: number; gid: number }, modeOf: (mode: number) => number): number | undefined {
    if (typeof srcHost !== 'string' || typeof target !== 'string' || !this.prev.times || !this.prev.walk) return undefined;
    const k = `file:${srcRel === '' ? '.' : srcRel}`;
    const sum = this.prev.now[k];
    const t = this.prev.walk[k];
    if (t === undefined || sum === undefined || !sum.startsWith('f ') || sum !== this.prev.before[k]) return undefined;
    const rel = this.rel(target);
    if (this.prev.times[rel] !== t || this.masked.has(rel)) return undefined;
    // `f <mode in octal> <uid> <gid> <size> <digest>` (cache/checksum.ts).
    const m = sum.indexOf(' ', 2);
    const sizeAt = sum.indexOf(' ', sum.indexOf(' ', m + 1) + 1) + 1;
    const mode = modeOf(parseInt(sum.slice(2, m), 8));
    this.remember(rel, inferredFile(owner.uid, owner.gid, mode, Number(sum.slice(sizeAt, sum.indexOf(' ', sizeAt))), t));
    this.counts.kept++;
    this.counts.byTimes++;
    return t;
  }

  /** `unchanged`, counted. */
  keep(srcHost: HostPath, srcRel: string, target: HostPath, st: fs.Stats, want: { uid: number; gid: number; mode: number }): boolean {
    const same = this.unchanged(srcHost, srcRel, target, st, want);
    if (same) this.counts.kept++;
    return same;
  }

  /**
   * Removes, through the mount, what the base holds and this copy did not write (a file deleted from
   * the context). Refuses when such an entry is also in the parent's tree (`parentDirs`): removing it
   * would hide the parent's, where a full copy shows it.
   */
  removeStale(parentDirs: string[]): void {
    const keep = new Set<string>();
    for (const v of this.visited) for (const a of selfAndAncestors(v)) keep.add(a);
    const walk = (rel: string) => {
      const names = fs.readdirSync(under(this.base, rel), { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort();
      // Removing an entry changes its directory's time, which the copy has already set.
      const dir = Buffer.from(rel === '' ? this.root : `${this.root}/${rel}`, 'latin1');
      const times = fs.lstatSync(dir);
      let removed = false;
      for (const n of names) {
        const r = rel === '' ? n : `${rel}/${n}`;
        const p = this.previous(r);
        if (p === undefined) continue;
        const mounted = Buffer.from(`${this.root}/${r}`, 'latin1');
        if (keep.has(r)) {
          // What this copy wrote there replaced the base's entry; a directory it kept is walked.
          if (p.st.isDirectory() && fs.lstatSync(mounted).isDirectory()) walk(r);
          continue;
        }
        if (parentDirs.some((d) => lstatUnder(d, r) !== undefined)) throw new ReuseRefused(`/${r} is gone from the context but the parent has it`);
        fs.rmSync(mounted, { recursive: true, force: true });
        removed = true;
        this.counts.removed++;
      }
      if (removed) fs.utimesSync(dir, times.atime, times.mtime);
    };
    walk('');
  }
}

/** A regular file as a COPY writes it (owner and mode of the copy, the source's size and time), for the differ. */
const inferredFile = (uid: number, gid: number, mode: number, size: number, mtimeMs: number): EntryStat =>
  keptStat({ mode: fs.constants.S_IFREG | mode, uid, gid, size, mtimeMs, nlink: 1, dev: 0, ino: 0, rdev: 0 }, true);

/** Recorded for at most this many files (about 60 bytes each in memory, 40 in the file); past it, none. */
const MAX_TIMES = 200_000;

/**
 * The time a COPY gives each regular file it writes or keeps (whole milliseconds: the Date the copy
 * sets), by walk path: stored with the result for the step's next COPY (`PreviousCopy.times`).
 */
export class TimesRecorder {
  private readonly roots: string[];
  private times: Record<string, number> | undefined = Object.create(null) as Record<string, number>;
  private count = 0;
  /** `upper`: the mount's upper directory, where a copy writes below the directories it made. */
  constructor(dstRoot: string, upper?: string) {
    this.roots = [dstRoot, ...(upper ? [upper] : [])].map((r) => latin1(r) + '/');
  }
  note(target: HostPath, mtimeMs: number): void {
    if (!this.times) return;
    const t = latin1(target);
    const root = this.roots.find((r) => t.startsWith(r));
    if (root === undefined) return;
    this.times[t.slice(root.length)] = Math.round(mtimeMs);
    if (++this.count > MAX_TIMES) this.times = undefined;
  }
  /** What to store for `snapshot`, or undefined when too many files were copied. */
  result(snapshot: string | undefined): CopyTimes | undefined {
    return this.times && snapshot ? { snapshot, times: this.times } : undefined;
  }
}

const recorded = new WeakMap<object, CopyTimes>();
/** The times a COPY recorded for its result, for the cache to store (ops/handles.ts). */
export const copyTimesOf = (result: object): CopyTimes | undefined => recorded.get(result);
export function attachCopyTimes(result: object, t: CopyTimes | undefined): void {
  if (t) recorded.set(result, t);
}

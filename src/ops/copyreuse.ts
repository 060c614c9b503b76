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
import type { CacheIndex } from '../cache/index.js';
import type { OpSpec, OpsEnv } from './types.js';
import { layerParent, SQUASHED } from './layer.js';
import { readLayerMeta } from '../runtime/index.js';
import type { HostPath } from './copysource.js';

/** Snapshots stacked under one layer at most: each reuse adds a directory to the overlay's lowers. */
const MAX_STACK = 4;

/** The same step's previous result, and the key material it and this run were made from. */
export interface PreviousCopy {
  /** Committed snapshots whose own changes the new layer joins, top first (the previous result first). */
  stack: string[];
  before: Record<string, string>;
  now: Record<string, string>;
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
    const stack = [rec.snapshot];
    const depth = Number((await env.snapshotter.stat(rec.snapshot)).labels[SQUASHED] ?? 0);
    if (depth + 2 > MAX_STACK) return undefined;
    for (let i = 0; i < depth; i++) stack.push((await env.snapshotter.stat(stack.at(-1)!)).parent!);
    return { stack, before: last.material, now: now.material };
  } catch {
    // gone or changing under another build: copy in full
    return undefined;
  }
}

/** Why a reuse stopped: the step then copies in full. */
export class ReuseRefused extends Error {}

const latin1 = (p: HostPath) => (typeof p === 'string' ? Buffer.from(p) : p).toString('latin1');
/** `dir/rel`, `rel` a walk path (latin1: one character per byte of the name). */
const under = (dir: string, rel: string) => (rel === '' ? Buffer.from(dir) : Buffer.concat([Buffer.from(dir), Buffer.from('/' + rel, 'latin1')]));
function exists(p: Buffer): boolean {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}
const WHITEOUT = (st: fs.Stats) => st.isCharacterDevice() && st.rdev === 0;

/** One upperdir of the previous result, and the directories overlay marked opaque in it. */
interface Upper {
  dir: string;
  opaque: Set<string>;
}

/** `rel` and each directory above it (walk paths). */
function* selfAndAncestors(rel: string): Generator<string> {
  for (let p = rel; p !== ''; p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) yield p;
}

/**
 * What copytree asks while it writes on the previous result: whether an entry is already there as this
 * copy would write it, and (at the end) what the previous copy wrote that this one did not.
 */
export class CopyReuse {
  private readonly visited = new Set<string>();
  /** Files and links left as the previous result has them, and entries removed (for the step's log). */
  readonly counts = { kept: 0, removed: 0 };
  private readonly root: string;
  private readonly uppers: Upper[];
  constructor(
    dstRoot: string,
    /** The previous result's upperdirs, top first. */
    uppers: string[],
    private readonly prev: PreviousCopy,
  ) {
    this.root = latin1(dstRoot);
    // Opaque marks matter only between the previous result's own upperdirs (a deeper one is hidden under
    // an opaque directory); what they hide of the parent is the layer's business (treediff.ts).
    this.uppers = uppers.map((dir, i) => ({ dir, opaque: i < uppers.length - 1 ? readLayerMeta(dir).opaque : new Set<string>() }));
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
   * The previous result's own entry at `rel`, as its overlay shows it: from the topmost upperdir that
   * holds it, unless a whiteout, an opaque directory or a non-directory above hides the deeper ones.
   */
  private previous(rel: string): { st: fs.Stats; host: Buffer } | undefined {
    for (const u of this.uppers) {
      const host = under(u.dir, rel);
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(host, { throwIfNoEntry: false });
      } catch {
        // ENOTDIR: a file of this upperdir is on the way, and hides what is under it below
        return undefined;
      }
      if (st) return WHITEOUT(st) ? undefined : { st, host };
      for (const a of selfAndAncestors(rel)) if (u.opaque.has(a)) return undefined;
    }
    return undefined;
  }

  /**
   * True when the previous result holds `target` exactly as this copy would write it from `src`: the
   * same content (the key's checksum of the context file), type, size, owner, mode and mtime.
   */
  private unchanged(srcHost: HostPath, srcRel: string, target: HostPath, st: fs.Stats, want: { uid: number; gid: number; mode: number }): boolean {
    if (typeof srcHost !== 'string' || typeof target !== 'string') return false;
    const k = `file:${srcRel === '' ? '.' : srcRel}`;
    const sum = this.prev.now[k];
    if (sum === undefined || sum !== this.prev.before[k]) return false;
    const p = this.previous(this.rel(target));
    if (!p || p.st.uid !== want.uid || p.st.gid !== want.gid) return false;
    if (st.isSymbolicLink()) return p.st.isSymbolicLink() && fs.readlinkSync(p.host, { encoding: 'buffer' }).equals(fs.readlinkSync(srcHost, { encoding: 'buffer' }));
    if (!st.isFile() || !p.st.isFile()) return false;
    return p.st.size === st.size && (p.st.mode & 0o7777) === want.mode && p.st.mtimeMs === st.mtime.getTime();
  }

  /** `unchanged`, counted. */
  keep(srcHost: HostPath, srcRel: string, target: HostPath, st: fs.Stats, want: { uid: number; gid: number; mode: number }): boolean {
    const same = this.unchanged(srcHost, srcRel, target, st, want);
    if (same) this.counts.kept++;
    return same;
  }

  /**
   * Removes, through the mount, what the previous copy wrote and this one did not (a file deleted
   * from the context). Refuses when such an entry is also in the parent's tree (`parentDirs`): removing
   * it would hide the parent's, where a full copy shows it; and when the previous result deletes
   * something itself (a full copy would find the parent's entry there).
   */
  removeStale(parentDirs: string[]): void {
    const keep = new Set<string>();
    for (const v of this.visited) for (const a of selfAndAncestors(v)) keep.add(a);
    const walk = (rel: string) => {
      const names = new Set<string>();
      for (const u of this.uppers) {
        let st: fs.Stats | undefined;
        try {
          st = fs.lstatSync(under(u.dir, rel), { throwIfNoEntry: false });
        } catch {
          break;
        }
        if (st && !st.isDirectory()) break;
        if (st) for (const n of fs.readdirSync(under(u.dir, rel), { encoding: 'buffer' })) names.add(n.toString('latin1'));
        if (rel !== '' && [...selfAndAncestors(rel)].some((a) => u.opaque.has(a))) break;
      }
      // Removing an entry changes its directory's time, which the copy has already set.
      const dir = Buffer.from(rel === '' ? this.root : `${this.root}/${rel}`, 'latin1');
      const times = fs.lstatSync(dir);
      let removed = false;
      for (const n of [...names].sort()) {
        const r = rel === '' ? n : `${rel}/${n}`;
        // A deletion there is one of these stale removals (the previous result never hides its parent's
        // entries otherwise: a COPY replaces them): nothing to remove.
        const p = this.previous(r);
        if (p === undefined) continue;
        const mounted = Buffer.from(`${this.root}/${r}`, 'latin1');
        if (keep.has(r)) {
          // What this copy wrote there replaced the previous entry; a directory it kept is walked.
          if (p.st.isDirectory() && fs.lstatSync(mounted).isDirectory()) walk(r);
          continue;
        }
        if (parentDirs.some((d) => exists(under(d, r)))) throw new ReuseRefused(`/${r} is gone from the context but the parent has it`);
        fs.rmSync(mounted, { recursive: true, force: true });
        removed = true;
        this.counts.removed++;
      }
      if (removed) fs.utimesSync(dir, times.atime, times.mtime);
    };
    walk('');
  }
}

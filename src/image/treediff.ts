/**
 * Layer diff by comparing two full trees (for snapshotters without an overlay upperdir): entries that
 * are new or changed (type, mode, owner, size, mtime, link target, or content when sizes match but
 * times differ), with their parent directories as overlay would copy them up, and a `.wh.<name>` for
 * each entry that is gone. Emitted in the same sorted order and format as the upperdir diff, so
 * identical changes give identical layers.
 */
import fs from 'node:fs';
import path from 'node:path';
import { encodeHeader, END_OF_ARCHIVE, type TarHeader } from './tar.js';
import { entryBlocks } from './diff.js';

export type XattrMap = Map<string, Record<string, Buffer>>;

function sameXattrs(a: Record<string, Buffer> | undefined, b: Record<string, Buffer> | undefined): boolean {
  const ka = Object.keys(a ?? {}).sort();
  const kb = Object.keys(b ?? {}).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a![k]!.equals(b![k]!));
}

function lstat(p: string): fs.Stats | undefined {
  return fs.lstatSync(p, { throwIfNoEntry: false });
}


function sameContent(a: string, b: string): boolean {
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b, 'r');
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

function changed(lower: string, upper: string, u: fs.Stats): boolean {
  const l = lstat(lower);
  if (!l) return true;
  if ((l.mode & 0o170000) !== (u.mode & 0o170000) || l.mode !== u.mode || l.uid !== u.uid || l.gid !== u.gid) return true;
  if (u.isSymbolicLink()) return fs.readlinkSync(lower) !== fs.readlinkSync(upper);
  if (u.isFile()) return l.size !== u.size || (l.mtimeMs !== u.mtimeMs && !sameContent(lower, upper));
  if (u.isCharacterDevice() || u.isBlockDevice()) return l.rdev !== u.rdev;
  return false;
}

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export async function* diffTrees(lowerRoot: string | undefined, upperRoot: string, opts: { sourceDateEpoch?: number; xattrs?: { lower?: XattrMap; upper: XattrMap } } = {}): AsyncGenerator<Buffer> {
  const xa = opts.xattrs;
  const changedOrXattrs = (r: string, lowerPath: string, upperPath: string, st: fs.Stats) => changed(lowerPath, upperPath, st) || (xa !== undefined && !sameXattrs(xa.lower?.get(r), xa.upper.get(r)));
  const clamp = (t: number) => (opts.sourceDateEpoch !== undefined ? Math.min(t, opts.sourceDateEpoch) : t);
  const links = new Map<string, string>();
  /** Entries under `rel` that differ; an unchanged directory is emitted only when something inside it changed. */
  function* walk(rel: string): Generator<{ rel: string; kind: 'entry' | 'whiteout'; st?: fs.Stats }> {
    const up = path.join(upperRoot, rel);
    const low = lowerRoot ? path.join(lowerRoot, rel) : undefined;
    const names = new Set(fs.readdirSync(up));
    const lowNames = low && lstat(low)?.isDirectory() ? fs.readdirSync(low) : [];
    const all = [...new Set([...names, ...lowNames])].sort(byBytes);
    for (const name of all) {
      const r = rel === '' ? name : `${rel}/${name}`;
      if (!names.has(name)) {
        yield { rel: r, kind: 'whiteout' };
        continue;
      }
      const st = fs.lstatSync(path.join(upperRoot, r));
      const lowerPath = lowerRoot ? path.join(lowerRoot, r) : undefined;
      const lst = lowerPath ? lstat(lowerPath) : undefined;
      if (st.isDirectory()) {
        // (a file replaced by a directory has no lower children: walk() then lists none)
        const inner = [...walk(r)];
        const selfChanged = !lowerPath || !lst || changedOrXattrs(r, lowerPath, path.join(upperRoot, r), st);
        if (selfChanged || inner.length > 0) yield { rel: r, kind: 'entry', st };
        yield* inner;
      } else if (!lowerPath || changedOrXattrs(r, lowerPath, path.join(upperRoot, r), st)) {
        yield { rel: r, kind: 'entry', st };
      }
    }
  }
  for (const e of walk('')) {
    if (e.kind === 'whiteout') {
      const dir = path.posix.dirname(e.rel);
      const name = path.posix.basename(e.rel);
      yield encodeHeader({ name: dir === '.' ? `.wh.${name}` : `${dir}/.wh.${name}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: clamp(0) });
      continue;
    }
    const st = e.st!;
    const full = path.join(upperRoot, e.rel);
    const base: Omit<TarHeader, 'type'> = { name: e.rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: clamp(Math.floor(st.mtimeMs / 1000)), xattrs: xa?.upper.get(e.rel) };
    if (st.isDirectory()) yield encodeHeader({ ...base, type: 'dir' });
    else yield* entryBlocks(base, full, st, links);
  }
  yield END_OF_ARCHIVE;
}

/**
 * Hard links an overlay upperdir does not show. With `index=on`, a copy-up of one name of a hard-linked
 * lower file (a chmod, a write) changes the file under all its names, as on any filesystem, but only the
 * name that was touched appears in the upperdir; the kernel finds the others through its index. The
 * layer must say what the container saw (every name, linked), and the committed snapshot, which later
 * steps see without that index, must say the same: so the other names are linked into the upperdir
 * before the diff. Only runs when the index holds something (a hard-linked file was copied up).
 *
 * fuse-overlayfs keeps no index: a copy-up breaks the link while the step runs (its other names still
 * show the old file, as in podman). It records each copy-up's origin, and the same linking after the
 * step gives the layer the kernel's overlay gives, when one name of the file was changed.
 */
import fs from 'node:fs';
import { fsPath } from './treediff.js';

const binary = (p: string) => Buffer.from(p).toString('latin1');

function* files(root: string, rel = ''): Generator<{ rel: string; st: fs.Stats }> {
  for (const b of fs.readdirSync(fsPath(`${root}/${rel}`), { encoding: 'buffer' })) {
    const r = rel === '' ? b.toString('latin1') : `${rel}/${b.toString('latin1')}`;
    const st = fs.lstatSync(fsPath(`${root}/${r}`));
    if (st.isDirectory()) yield* files(root, r);
    else if (st.isFile()) yield { rel: r, st };
  }
}

/** Whether every ancestor of `rel` is visible through the upperdir (not whited out, replaced or opaque). */
function visible(upper: string, rel: string, opaque: Set<string>): boolean {
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    const st = fs.lstatSync(fsPath(`${upper}/${dir}`), { throwIfNoEntry: false });
    if (!st) continue;
    if (!st.isDirectory() || opaque.has(dir)) return false;
  }
  return true;
}

/** Makes `rel`'s missing parent directories in the upperdir, with the lower's owner, mode and times. */
function makeParents(upper: string, lower: string, rel: string): void {
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    const target = fsPath(`${upper}/${dir}`);
    if (fs.existsSync(target)) continue;
    const st = fs.lstatSync(fsPath(`${lower}/${dir}`));
    fs.mkdirSync(target);
    fs.chownSync(target, st.uid, st.gid);
    fs.chmodSync(target, st.mode & 0o7777);
    fs.utimesSync(target, st.atime, st.mtime);
  }
}

/**
 * Links into `upperDir` every name under which the lower tree (`lowerDir`, a read-only view of the
 * parent) holds a copied-up file; returns how many names were added.
 */
export function materializeCopiedUpLinks(upperDir: string, lowerDir: string, copied: { index: string; copiedUp?: Set<string> }, opaque: Set<string>): number {
  const upper = binary(upperDir);
  const lower = binary(lowerDir);
  const indexed = new Set<number>();
  for (const name of fs.existsSync(copied.index) ? fs.readdirSync(copied.index) : []) {
    const st = fs.lstatSync(`${copied.index}/${name}`);
    if (st.isFile()) indexed.add(st.ino);
  }
  for (const rel of copied.copiedUp ?? []) {
    const st = fs.lstatSync(fsPath(`${upper}/${rel}`), { throwIfNoEntry: false });
    if (st?.isFile()) indexed.add(st.ino);
  }
  if (indexed.size === 0) return 0;
  /** lower inode → the upperdir name that carries its copy-up */
  const origins = new Map<number, string>();
  for (const f of files(upper)) {
    if (!indexed.has(f.st.ino)) continue;
    const l = fs.lstatSync(fsPath(`${lower}/${f.rel}`), { throwIfNoEntry: false });
    if (l?.isFile() && l.nlink > 1) origins.set(l.ino, f.rel);
  }
  let added = 0;
  if (origins.size === 0) return 0;
  for (const f of files(lower)) {
    const copied = origins.get(f.st.ino);
    if (copied === undefined || f.rel === copied) continue;
    if (fs.lstatSync(fsPath(`${upper}/${f.rel}`), { throwIfNoEntry: false }) || !visible(upper, f.rel, opaque)) continue;
    makeParents(upper, lower, f.rel);
    fs.linkSync(fsPath(`${upper}/${copied}`), fsPath(`${upper}/${f.rel}`));
    added++;
  }
  return added;
}

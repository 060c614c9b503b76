/**
 * Read-only lookups in a snapshot's merged view without mounting it: the directories behind its mounts
 * (overlay upperdir then lowerdirs, or one bind source), searched top down with overlay's rules
 * (a 0/0 character device hides lower entries; an opaque directory is not consulted further down).
 * Used for small reads (/etc/passwd) and for telling which mount points a run had to create.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Mount } from '../snapshotter/index.js';

/**
 * The directories of an overlay mount (the kernel's or fuse-overlayfs's, which take the same ones),
 * made absolute against its working directory; undefined for another type.
 */
export function overlayDirs(m: Mount): { lower: string[]; upper?: string; work?: string } | undefined {
  if (m.type !== 'overlay' && m.type !== 'fuse.fuse-overlayfs') return undefined;
  const opt = (k: string) => m.options.find((o) => o.startsWith(k + '='))?.slice(k.length + 1);
  const abs = (p: string) => (path.isAbsolute(p) ? p : path.join(m.cwd ?? '/', p));
  const upper = opt('upperdir'), work = opt('workdir');
  return { lower: (opt('lowerdir') ?? '').split(':').filter(Boolean).map(abs), upper: upper && abs(upper), work: work && abs(work) };
}

export function layerDirs(mounts: Mount[]): string[] {
  const out: string[] = [];
  for (const m of mounts) {
    if (m.type === 'bind' || m.type === 'rbind') {
      out.push(m.source);
      continue;
    }
    const d = overlayDirs(m);
    if (d?.upper) out.push(d.upper);
    if (d) out.push(...d.lower);
  }
  return out;
}

function lstat(p: string): fs.Stats | undefined {
  try {
    // Most paths asked about are absent; an exception per ENOENT cost `run` about 4 ms.
    return fs.lstatSync(p, { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** The host path of `p` in the merged view, or undefined when it does not exist there. */
export function findInLayers(dirs: string[], p: string): string | undefined {
  const rel = p.split('/').filter(Boolean).join('/');
  for (const d of dirs) {
    const st = lstat(path.join(d, rel));
    if (st) {
      if (st.isCharacterDevice() && st.rdev === 0) return undefined;
      return path.join(d, rel);
    }
    // A whiteout of any parent in this layer hides the path in all lower ones.
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const sp = lstat(path.join(d, ...parts.slice(0, i)));
      if (sp?.isCharacterDevice() && sp.rdev === 0) return undefined;
    }
  }
  return undefined;
}

export function readFileInLayers(dirs: string[], p: string): string | undefined {
  const host = findInLayers(dirs, p);
  if (!host) return undefined;
  try {
    return fs.readFileSync(host, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Mount points that did not exist in the image before a run are created by the helper in the upper
 * layer; after the run they are removed again when still empty so they do not end up in the layer
 * (as BuildKit's executor does with its mount stubs).
 */
export function missingMountPoints(dirs: string[], destinations: string[]): string[] {
  const out = new Set<string>();
  // Destinations share parents (/proc, /dev, /sys, /etc: about 500 lstats without this for a
  // container's 30 mounts), and everything under a missing directory is missing too.
  const exists = new Map<string, boolean>();
  for (const dst of destinations) {
    const parts = dst.split('/').filter(Boolean);
    let parentMissing = false;
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      let found = exists.get(p);
      if (found === undefined) exists.set(p, (found = !parentMissing && findInLayers(dirs, p) !== undefined));
      if (!found) {
        out.add(p);
        parentMissing = true;
      }
    }
  }
  // deepest first, so a created parent is removed after its created children
  return [...out].sort((a, b) => b.split('/').length - a.split('/').length);
}

export function removeMountStubs(upper: string, stubs: string[]): void {
  for (const s of stubs) {
    const p = path.join(upper, s);
    const st = lstat(p);
    if (!st) continue;
    try {
      // A directory fuse-overlayfs made holds its opaque marks (.wh..wh..opq, .wh..opq): still empty.
      const marks = st.isDirectory() ? fs.readdirSync(p) : [];
      if (st.isDirectory() && marks.every((n) => n === '.wh..wh..opq' || n === '.wh..opq')) {
        for (const n of marks) fs.rmSync(path.join(p, n));
        fs.rmdirSync(p);
      } else if (st.isFile() && st.size === 0) fs.rmSync(p);
    } catch {
      // left in place: the step's layer records it, which is harmless
    }
  }
}

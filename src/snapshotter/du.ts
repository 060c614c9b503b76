import fs from 'node:fs';
import path from 'node:path';
import type { Usage } from './types.js';

/** Disk usage of a tree: allocated bytes and inodes, hard links counted once. */
export function duSync(dir: string): Usage {
  let size = 0;
  let inodes = 0;
  const seen = new Set<string>();
  const walk = (p: string) => {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    inodes++;
    size += st.blocks * 512;
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  return { size, inodes };
}

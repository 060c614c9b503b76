import fs from 'node:fs';
import path from 'node:path';

/**
 * Visits every non-directory entry under `dir` (symlinks are not followed; unreadable directories are
 * skipped). `visit` returns false to stop the walk.
 */
export function walkFiles(dir: string, visit: (file: string, entry: fs.Dirent) => boolean | void): void {
  let stop = false;
  const walk = (d: string) => {
    let ents: fs.Dirent[] = [];
    try {
      ents = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (stop) return;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (visit(p, e) === false) stop = true;
    }
  };
  walk(dir);
}

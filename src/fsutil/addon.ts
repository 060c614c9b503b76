/**
 * tsbuild's optional native addons (`native/build/tsbuild-<name>.node`, built when Node's headers are
 * installed): loaded, or why not. Each caller keeps its own answer and falls back when there is none.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function loadAddon<T>(name: string): { addon: T } | { reason: string } {
  // From dist/<module>/ and from dist/bundle/ alike: two levels under the project.
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), `../../native/build/tsbuild-${name}.node`);
  if (!fs.existsSync(file)) return { reason: `${file} was not built (Node's headers were missing when npm ci ran)` };
  try {
    const m = { exports: {} as T };
    process.dlopen(m, file);
    return { addon: m.exports };
  } catch (e) {
    // A stale or foreign build.
    return { reason: `${file}: ${(e as Error).message}` };
  }
}

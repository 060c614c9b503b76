/**
 * tsbuild's optional native addons (`native/build/tsbuild-<name>.node`, built when Node's headers are
 * installed): loaded, or why not. Each caller keeps its own answer and falls back when there is none.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const loaded = new Map<string, { addon: unknown } | { reason: string }>();

/** Loaded once per process: one addon file serves several callers (files: batches and inode flags). */
export function loadAddon<T>(name: string): { addon: T } | { reason: string } {
  let l = loaded.get(name);
  if (!l) loaded.set(name, (l = loadFile(name)));
  return l as { addon: T } | { reason: string };
}

function loadFile(name: string): { addon: unknown } | { reason: string } {
  // From dist/<module>/ and from dist/bundle/ alike: two levels under the project.
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), `../../native/build/tsbuild-${name}.node`);
  if (!fs.existsSync(file)) return { reason: `${file} was not built (Node's headers were missing when npm ci ran)` };
  try {
    const m = { exports: {} };
    process.dlopen(m, file);
    return { addon: m.exports };
  } catch (e) {
    // A stale or foreign build.
    return { reason: `${file}: ${(e as Error).message}` };
  }
}

/** An addon a variable can turn off (`VAR=0`), loaded at its first use. */
export interface OptionalAddon<T> {
  /** The addon, or null: not built, not loadable, or turned off (the variable is read at every call). */
  get(): T | null;
  /** For `tsbuild info`: on, or why not. */
  status(): { on: true } | { on: false; reason: string };
}

export function optionalAddon<T>(name: string, offVar: string): OptionalAddon<T> {
  let loaded: { addon: T } | { reason: string } | undefined;
  const load = () => (loaded ??= loadAddon<T>(name));
  return {
    get() {
      if (process.env[offVar] === '0') return null;
      const l = load();
      return 'addon' in l ? l.addon : null;
    },
    status() {
      if (process.env[offVar] === '0') return { on: false, reason: `${offVar}=0` };
      const l = load();
      return 'addon' in l ? { on: true } : { on: false, reason: l.reason };
    },
  };
}

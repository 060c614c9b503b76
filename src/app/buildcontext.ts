/** `build --build-context NAME=VALUE`: BuildKit's named contexts, checked before anything runs. */
import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors/index.js';
import { namedContextKey, type NamedContext } from '../planner/index.js';

/**
 * Each value as BuildKit reads it: a local directory, or `docker-image://REF`. The other sources
 * BuildKit knows (a git or HTTP URL, an OCI layout, another build's target) are refused by name
 * with what to do instead; a directory must exist, as a misspelt one would otherwise be an image.
 */
export function parseBuildContexts(values: string[], cwd = process.cwd()): Map<string, NamedContext> {
  const out = new Map<string, NamedContext>();
  for (const v of values) {
    const i = v.indexOf('=');
    const name = i > 0 ? v.slice(0, i).trim() : '';
    const value = i > 0 ? v.slice(i + 1).trim() : '';
    if (!name || !value) throw new UsageError(`--build-context ${v}: use NAME=DIRECTORY or NAME=docker-image://IMAGE`);
    const key = namedContextKey(name);
    if (out.has(key)) throw new UsageError(`--build-context ${v}: ${name} is given twice; give each name once`);
    out.set(key, contextOf(v, value, cwd));
  }
  return out;
}

function contextOf(flag: string, value: string, cwd: string): NamedContext {
  if (value.startsWith('docker-image://')) {
    const ref = value.slice('docker-image://'.length);
    if (!ref) throw new UsageError(`--build-context ${flag}: name the image after docker-image://`);
    return { kind: 'image', ref };
  }
  const refuse = (what: string, instead: string) => new UsageError(`--build-context ${flag}: ${what} are not supported yet; ${instead}`);
  if (value.startsWith('oci-layout://')) throw refuse('OCI layout contexts', 'load the layout (tsbuild load -i) and use docker-image://NAME');
  if (value.startsWith('target:')) throw refuse("other bake targets' results", 'build that image first (tsbuild build -t NAME) and use docker-image://NAME');
  if (/^(?:https?|git|ssh):\/\//.test(value) || /^[\w.-]+@[\w.-]+:/.test(value)) throw refuse('remote (git or HTTP) contexts', 'clone or download it and give the directory');
  const dir = path.resolve(cwd, value);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new UsageError(`--build-context ${flag}: ${dir} does not exist; give an existing directory, or docker-image://IMAGE for an image`);
  }
  if (!st.isDirectory()) throw new UsageError(`--build-context ${flag}: ${dir} is not a directory; a local context is a directory (for one file, give its directory)`);
  return { kind: 'local', dir };
}

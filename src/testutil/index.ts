/** Helpers for tests only: where things are, and temp dirs that are always removed. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const sharedDir = process.env.TSBUILD_SHARED ?? path.resolve(repoRoot, '../shared');
export const conformanceDir = path.join(sharedDir, 'conformance/buildkit-parser');

export function tmpdir(prefix = 'tsb-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function readJSON<T>(p: string): T {
  return JSON.parse(fs.readFileSync(p, 'utf8')) as T;
}

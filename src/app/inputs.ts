/** A built image's inputs, kept so that `verify` can rebuild it and compare. */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../fsutil/index.js';

/** What `verify` needs to rebuild an image: `<store>/builds/<manifest>.json`. */
export interface BuildInputs {
  context: string;
  dockerfile: string;
  target?: string;
  buildArgs: Record<string, string>;
  /** `--build-context` values, local directories absolute. */
  buildContexts?: string[];
  network: string;
  sourceDateEpoch?: string;
  dockerfileDigest: string;
  labels?: Record<string, string>;
  /** The platform built for, when not this machine's (one entry of a multi-platform build). */
  platform?: string;
}

export function recordInputs(root: string, manifest: string, inputs: BuildInputs): void {
  const dir = path.join(root, 'builds');
  fs.mkdirSync(dir, { recursive: true });
  // Atomic, as every other record: a kill -9 mid-write left a truncated file that doctor reported.
  writeFileAtomic(path.join(dir, manifest.replace('sha256:', '') + '.json'), JSON.stringify(inputs, null, 1), { sync: false });
}

export function readInputs(root: string, manifest: string): BuildInputs | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'builds', manifest.replace('sha256:', '') + '.json'), 'utf8')) as BuildInputs;
  } catch {
    return undefined;
  }
}

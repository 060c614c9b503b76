/**
 * `build -`: what comes on standard input is either a Dockerfile (the build has no context) or a tar
 * archive of the context (plain, gzip, bzip2, xz or zstd), as with `docker build - < ctx.tar.gz`.
 * It is written to a temp file first (a context can be large), then told apart by its content.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { detectArchive, extractTar, openDecompressed } from '../image/index.js';

export interface StdinContext {
  dir: string;
  /** Set when the input was a Dockerfile rather than a context archive. */
  dockerfileText?: string;
  cleanup(): void;
}

export async function contextFromStream(input: Readable): Promise<StdinContext> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tsb-stdin-'));
  const cleanup = () => fs.rmSync(tmp, { recursive: true, force: true });
  try {
    const file = path.join(tmp, 'input');
    await pipeline(input, fs.createWriteStream(file));
    const dir = path.join(tmp, 'context');
    fs.mkdirSync(dir);
    const kind = fs.statSync(file).size > 0 ? await detectArchive(file) : undefined;
    if (kind) {
      // Extraction keeps every path inside the context directory (hostile archives are refused).
      await extractTar(openDecompressed(file, kind), dir);
      return { dir, cleanup };
    }
    return { dir, dockerfileText: fs.readFileSync(file, 'utf8'), cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

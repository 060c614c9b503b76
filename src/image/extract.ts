/**
 * Safe, streaming tar extraction, for ADD of local archives and for applying layers through a mounted
 * (merged) view. Every entry is placed relative to `root` with all symlinks resolved inside it: `..`
 * that would leave the root is an error, absolute names are taken as relative, a symlink planted by an
 * earlier entry (or already in the root) cannot redirect a later write outside, and hard links may only
 * point at files inside the root. File data is written as it streams; memory stays flat.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import * as tar from 'tar';
import { TsbuildError } from '../errors/index.js';
import { mkdirInRoot, resolveInRoot } from '../fsutil/index.js';

export class ArchiveError extends TsbuildError {
  constructor(message: string) {
    super('ARCHIVE_INVALID', message);
  }
}

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

export function detectCompression(head: Buffer): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  return 'none';
}

/** A tar header block whose checksum is right (ustar or v7). */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < 512) return false;
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/g, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
  return sum === stored && block[0] !== 0;
}

/** The decompressed content of a file, streamed; bzip2, xz and zstd through the system programs. */
export function openDecompressed(file: string, c: Compression): Readable {
  const raw = fs.createReadStream(file);
  if (c === 'none') return raw;
  if (c === 'gzip') return raw.pipe(zlib.createGunzip());
  const prog = { bzip2: 'bzip2', xz: 'xz', zstd: 'zstd' }[c];
  const child = spawn(prog, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = child.stdout;
  child.on('error', (e) => out.destroy(new ArchiveError(`cannot decompress ${path.basename(file)}: the ${prog} program is not available (${e.message}); install it (Debian: apt-get install -y ${prog === 'zstd' ? 'zstd' : prog === 'xz' ? 'xz-utils' : 'bzip2'})`)));
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.on('close', (code) => {
    if (code !== 0) out.destroy(new ArchiveError(`${prog} failed on ${path.basename(file)}: ${err.trim() || `exit ${code}`}`));
  });
  raw.pipe(child.stdin);
  child.stdin.on('error', () => undefined);
  return out;
}

/** Whether a local file is a (possibly compressed) tar archive, judged by content as Docker does. */
export async function detectArchive(file: string): Promise<Compression | undefined> {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(512);
  const n = fs.readSync(fd, head, 0, 512, 0);
  fs.closeSync(fd);
  const c = detectCompression(head.subarray(0, n));
  if (c === 'none') return isTarHeader(head.subarray(0, n)) ? 'none' : undefined;
  const s = openDecompressed(file, c);
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of s as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= 512) break;
    }
  } catch {
    return undefined;
  } finally {
    s.destroy();
  }
  return isTarHeader(Buffer.concat(chunks).subarray(0, 512)) ? c : undefined;
}

export interface ExtractOptions {
  /** Treat OCI whiteouts (`.wh.`) as deletions: applying a layer. Otherwise they are ordinary files. */
  whiteouts?: boolean;
  /** Force ownership (ADD --chown); otherwise the archive's uid/gid. */
  owner?: { uid: number; gid: number };
  onWarning?: (message: string) => void;
  /** Replace a symlink found on an entry's path with a directory instead of following it (layer stacking). */
  shadowSymlinks?: boolean;
}

const MAX_ENTRY = 2 ** 40;

function cleanName(name: string): string {
  const n = path.posix.normalize('/' + name.replace(/^\.\/+/, '')).slice(1);
  return n;
}

function checkName(raw: string): string {
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  let depth = 0;
  for (const p of parts) {
    depth += p === '..' ? -1 : 1;
    if (depth < 0) throw new ArchiveError(`archive entry "${raw}" escapes the destination with "..": refusing to extract it`);
  }
  return cleanName(raw);
}

export async function extractTar(input: Readable, root: string, opts: ExtractOptions = {}): Promise<{ entries: number }> {
  const dirTimes: [string, Date][] = [];
  const created = new Set<string>();
  let entries = 0;
  let failure: unknown;
  const parser = new tar.Parser({ strict: true });
  const warn = opts.onWarning ?? (() => undefined);
  const place = (name: string): string => {
    if (opts.shadowSymlinks) {
      let cur = root;
      for (const part of path.posix.dirname(name).split('/').filter((x) => x !== '' && x !== '.')) {
        cur = path.join(cur, part);
        const st = fs.lstatSync(cur, { throwIfNoEntry: false });
        if (st && !st.isDirectory()) fs.rmSync(cur, { force: true });
        if (!st || !st.isDirectory()) fs.mkdirSync(cur);
      }
      return path.join(cur, path.posix.basename(name));
    }
    const parent = mkdirInRoot(root, path.posix.dirname('/' + name));
    const target = path.join(parent, path.posix.basename(name));
    return target;
  };
  const replace = (target: string, keepDir: boolean) => {
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(target);
    } catch {
      return;
    }
    if (keepDir && st.isDirectory()) return;
    fs.rmSync(target, { recursive: true, force: true });
  };
  const meta = (target: string, e: tar.ReadEntry, link = false) => {
    const uid = opts.owner?.uid ?? e.uid ?? 0;
    const gid = opts.owner?.gid ?? e.gid ?? 0;
    fs.lchownSync(target, uid, gid);
    if (!link) fs.chmodSync(target, (e.mode ?? 0o644) & 0o7777);
    const mt = e.mtime ?? new Date(0);
    if (link) fs.lutimesSync(target, mt, mt);
    else fs.utimesSync(target, mt, mt);
  };
  parser.on('entry', (e: tar.ReadEntry) => {
    if (failure) return e.resume();
    try {
      entries++;
      if ((e.size ?? 0) > MAX_ENTRY) throw new ArchiveError(`archive entry "${e.path}" claims ${e.size} bytes: refusing absurd sizes`);
      const name = checkName(e.path);
      if (name === '') return e.resume();
      const base = path.posix.basename(name);
      if (opts.whiteouts && base.startsWith('.wh.')) {
        const dir = path.posix.dirname(name);
        if (base === '.wh..wh..opq') {
          const host = resolveInRoot(root, '/' + dir);
          if (fs.existsSync(host)) {
            for (const c of fs.readdirSync(host)) {
              const rel = dir === '.' ? c : `${dir}/${c}`;
              if (!created.has(rel)) fs.rmSync(path.join(host, c), { recursive: true, force: true });
            }
          }
        } else {
          const victim = path.posix.join(dir, base.slice(4));
          fs.rmSync(resolveInRoot(root, '/' + victim, false), { recursive: true, force: true });
        }
        return e.resume();
      }
      const target = place(name);
      created.add(name);
      switch (e.type) {
        case 'Directory': {
          replace(target, true);
          if (!fs.existsSync(target)) fs.mkdirSync(target);
          meta(target, e);
          dirTimes.push([target, e.mtime ?? new Date(0)]);
          return e.resume();
        }
        case 'SymbolicLink':
          replace(target, false);
          fs.symlinkSync(e.linkpath ?? '', target);
          meta(target, e, true);
          return e.resume();
        case 'Link': {
          const src = resolveInRoot(root, '/' + checkName(e.linkpath ?? ''), false);
          let st: fs.Stats | undefined;
          try {
            st = fs.lstatSync(src);
          } catch {
            // reported below
          }
          if (!st || st.isDirectory()) throw new ArchiveError(`archive entry "${e.path}" is a hard link to "${e.linkpath}", which is not a file inside the destination`);
          replace(target, false);
          fs.linkSync(src, target);
          return e.resume();
        }
        case 'File':
        case 'OldFile':
        case 'ContiguousFile': {
          replace(target, false);
          const fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
          let written = 0;
          e.on('data', (chunk: Buffer) => {
            try {
              fs.writeSync(fd, chunk);
              written += chunk.length;
            } catch (err) {
              failure ??= err;
            }
          });
          e.on('end', () => {
            fs.closeSync(fd);
            if (written !== (e.size ?? 0)) failure ??= new ArchiveError(`archive entry "${e.path}" is truncated: ${written} of ${e.size} bytes`);
            else meta(target, e);
          });
          return;
        }
        case 'FIFO':
        case 'CharacterDevice':
        case 'BlockDevice':
          warn(`skipping ${e.type} "${e.path}": device nodes and fifos are not created from archives yet`);
          return e.resume();
        default:
          warn(`skipping "${e.path}" of unsupported type ${e.type}`);
          return e.resume();
      }
    } catch (err) {
      failure ??= err;
      e.resume();
    }
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('error', (err: Error) => reject(new ArchiveError(`invalid tar archive: ${err.message}`)));
    parser.on('warn', (code: string, message: string) => {
      if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ENTRY_INVALID' || code === 'TAR_ABORT') failure ??= new ArchiveError(`invalid tar archive: ${message}`);
    });
    parser.on('end', () => resolve());
    input.on('error', (err) => reject(err instanceof TsbuildError ? err : new ArchiveError(`reading the archive failed: ${err.message}`)));
    input.pipe(parser);
  });
  if (failure) throw failure instanceof TsbuildError ? failure : new ArchiveError(`extraction failed: ${(failure as Error).message}`);
  for (const [d, t] of dirTimes.reverse()) fs.utimesSync(d, t, t);
  return { entries };
}

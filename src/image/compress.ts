/**
 * Layer compression for pushes and exports. Local layers are stored uncompressed (their digest is their
 * diffID). A push compresses a layer as it uploads it (compressingLayer) and remembers the variant's
 * digest by (diffID, algorithm, level); an export, or a push whose streamed upload failed, makes the
 * variant a blob of its own (compressedLayer). Either way a second push of the same layer neither
 * recompresses nor uploads what the registry already has. Pulled layers already compressed the wanted way are used as they are, which
 * keeps their digests and makes cross-repository mounts possible.
 *
 * gzip is Node's zlib in parallel blocks (parallelGzip below); zstd is the `zstd`
 * program: measured at ~300 MiB/s streaming where the zstd-codec package reached 52 MiB/s on 8 MiB
 * and ran out of its fixed asm.js heap at 64 MiB (it has no streaming input).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { TsbuildError } from '../errors/index.js';
import { readJSONFile, writeFileAtomic } from '../fsutil/index.js';
import { openDecompressed, type Compression } from './decompress.js';
import type { ContentStore } from './store.js';
import { MediaType, type Descriptor } from './types.js';

export type LayerCompression = 'gzip' | 'zstd' | 'uncompressed';

export interface CompressionSpec {
  type: LayerCompression;
  level?: number;
}

export function parseCompression(s: string, level?: string): CompressionSpec {
  if (s !== 'gzip' && s !== 'zstd' && s !== 'uncompressed') throw new TsbuildError('USAGE', `unknown compression "${s}": use gzip, zstd or uncompressed`);
  if (level === undefined) return { type: s };
  const n = Number(level);
  const max = s === 'zstd' ? 19 : 9;
  if (!Number.isInteger(n) || n < (s === 'zstd' ? 1 : 0) || n > max) throw new TsbuildError('USAGE', `compression level ${level} is out of range for ${s} (${s === 'zstd' ? 1 : 0}..${max})`);
  return { type: s, level: n };
}

export function compressionOfMediaType(mediaType: string): Compression {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('+zstd')) return 'zstd';
  return 'none';
}

function mediaTypeFor(t: LayerCompression): string {
  return t === 'gzip' ? MediaType.layerGzip : t === 'zstd' ? MediaType.layerZstd : MediaType.layer;
}

const gzip = (b: Buffer, level: number) => new Promise<Buffer>((resolve, reject) => zlib.gzip(b, { level }, (e, out) => (e ? reject(e) : resolve(out))));

const SAMPLE = 16 << 10;

/**
 * One block. Already-compressed data (media, archives, random bytes) goes through zlib at 30-40
 * MiB/s whatever the level and comes out no smaller, so a sample of each block is tried first and a
 * block that does not shrink is stored (level 0, its bytes referenced, not copied). Deterministic: it
 * depends only on the data.
 */
async function gzipBlock(b: Buffer, level: number): Promise<Buffer[]> {
  if (level > 0 && b.length > SAMPLE * 2) {
    const probe = await gzip(b.subarray(0, SAMPLE), 1);
    if (probe.length > SAMPLE * 0.97) return storedGzipParts(b);
  }
  return [await gzip(b, level)];
}

/**
 * A gzip member of stored (uncompressed) deflate blocks, as pieces: the headers, and the input's own
 * bytes between them (no copy). zlib's level 0 runs at ~300 MiB/s; a copy into one buffer cost a push
 * of 512 MiB of incompressible data 512 MiB of fresh buffers, and V8 runs a full GC for every 64 MB
 * of them.
 */
function storedGzipParts(b: Buffer): Buffer[] {
  const blocks = Math.max(1, Math.ceil(b.length / 65535));
  const heads = Buffer.allocUnsafe(10 + blocks * 5 + 8);
  Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]).copy(heads, 0);
  const out: Buffer[] = [heads.subarray(0, 10)];
  for (let i = 0; i < blocks; i++) {
    const start = i * 65535;
    const len = Math.min(65535, b.length - start);
    const h = 10 + i * 5;
    heads[h] = i === blocks - 1 ? 1 : 0;
    heads.writeUInt16LE(len, h + 1);
    heads.writeUInt16LE(~len & 0xffff, h + 3);
    out.push(heads.subarray(h, h + 5), b.subarray(start, start + len));
  }
  const t = 10 + blocks * 5;
  heads.writeUInt32LE(zlib.crc32(b) >>> 0, t);
  heads.writeUInt32LE(b.length >>> 0, t + 4);
  out.push(heads.subarray(t, t + 8));
  return out;
}

/** storedGzipParts as one buffer. */
export function storedGzip(b: Buffer): Buffer {
  return Buffer.concat(storedGzipParts(b));
}

/**
 * gzip in parallel, as pigz and Go's pgzip do: the input is cut into fixed blocks, each compressed as
 * its own gzip member on the libuv pool, and the members are written in order. A multi-member gzip
 * file is plain RFC 1952 (every gunzip, Go's included, reads it), the output is deterministic for a
 * given level and block size, and at most `workers` blocks are in memory. A stored block's output is
 * its input's own bytes: `input` must not change a piece after yielding it (file and network reads
 * never do).
 */
export async function* parallelGzip(input: AsyncIterable<Buffer>, level = 6, blockSize = 1 << 20, workers = Math.max(4, os.availableParallelism())): AsyncGenerator<Buffer> {
  const pending: Promise<Buffer[]>[] = [];
  let parts: Buffer[] = [];
  let have = 0;
  const dispatch = (b: Buffer) => {
    const p = gzipBlock(b, level);
    p.catch(() => undefined); // awaited in order below; this only avoids an unhandled rejection
    pending.push(p);
  };
  for await (const c of input) {
    let chunk = c;
    while (chunk.length > 0) {
      const take = Math.min(chunk.length, blockSize - have);
      parts.push(chunk.subarray(0, take));
      have += take;
      chunk = chunk.subarray(take);
      if (have === blockSize) {
        // A piece that is a whole block (reads of the block size) is used as it is, not copied.
        dispatch(parts.length === 1 ? parts[0]! : Buffer.concat(parts, have));
        parts = [];
        have = 0;
        if (pending.length >= workers) yield* await pending.shift()!;
      }
    }
  }
  if (have > 0 || pending.length === 0) dispatch(parts.length === 1 ? parts[0]! : Buffer.concat(parts, have));
  while (pending.length) yield* await pending.shift()!;
}

function compressStream(input: Readable, spec: CompressionSpec): Readable {
  if (spec.type === 'gzip') return Readable.from(parallelGzip(input as AsyncIterable<Buffer>, spec.level ?? 6));
  const child = spawn('zstd', [`-${spec.level ?? 3}`, '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = child.stdout;
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.on('error', (e) => out.destroy(new TsbuildError('ZSTD_UNAVAILABLE', `cannot run zstd (${e.message}); install it (Debian: apt-get install -y zstd) or use --compression gzip`)));
  child.on('close', (code) => {
    if (code !== 0) out.destroy(new TsbuildError('ZSTD_FAILED', `zstd failed: ${err.trim() || `exit ${code}`}`));
  });
  input.on('error', (e) => out.destroy(e));
  child.stdin.on('error', () => undefined);
  input.pipe(child.stdin);
  return out;
}

/**
 * The layer as it should be pushed or exported with `spec`: an existing blob when one fits, otherwise a
 * new compressed blob made from the uncompressed content.
 */
function memoFileFor(store: ContentStore, diffID: string, spec: CompressionSpec): string {
  return path.join(store.root, 'compressed', `${spec.type}-${spec.level ?? 'default'}-${diffID.replace(/^sha256:/, '')}.json`);
}

/** Remembers the layer's variant for `spec` (a streamed push's needs no fsync: it only saves work). */
function rememberVariant(store: ContentStore, diffID: string, spec: CompressionSpec, desc: Descriptor, sync = true): void {
  const memoFile = memoFileFor(store, diffID, spec);
  fs.mkdirSync(path.dirname(memoFile), { recursive: true });
  writeFileAtomic(memoFile, JSON.stringify(desc), { sync });
}

/** The layer as `spec` wants it when no work is needed (already so, or made before); else undefined. */
export function existingCompressed(store: ContentStore, layer: { diffID: string; descriptor: Descriptor }, spec: CompressionSpec): Descriptor | undefined {
  const d = layer.descriptor;
  const have = compressionOfMediaType(d.mediaType);
  const want = spec.type === 'uncompressed' ? 'none' : spec.type;
  if (have === want && (spec.level === undefined || want === 'none')) return { mediaType: mediaTypeFor(spec.type), digest: d.digest, size: d.size };
  const memo = knownVariant(store, layer, spec);
  if (memo && store.has(memo.digest)) return memo;
  if (want === 'none' && store.has(layer.diffID)) return { mediaType: MediaType.layer, digest: layer.diffID, size: store.blobSize(layer.diffID) };
  return undefined;
}

export async function compressedLayer(store: ContentStore, layer: { diffID: string; descriptor: Descriptor }, spec: CompressionSpec): Promise<Descriptor> {
  const existing = existingCompressed(store, layer, spec);
  if (existing) return existing;
  const d = layer.descriptor;
  const have = compressionOfMediaType(d.mediaType);
  const want = spec.type === 'uncompressed' ? 'none' : spec.type;
  // Verified as it streams: a damaged stored layer must not be compressed into a valid-looking blob.
  const raw = openDecompressed(store.openBlob(d.digest), have);
  const out = (want === 'none' ? raw : compressStream(raw, spec)) as AsyncIterable<Buffer>;
  const blob = await store.writeBlob(out, want === 'none' ? { digest: layer.diffID } : undefined);
  const desc = { mediaType: mediaTypeFor(spec.type), digest: blob.digest, size: blob.size };
  rememberVariant(store, layer.diffID, spec, desc);
  return desc;
}

/** The variant made before, by digest, whether or not its bytes are still in the store (a streamed push keeps none). */
export function knownVariant(store: ContentStore, layer: { diffID: string }, spec: CompressionSpec): Descriptor | undefined {
  return readJSONFile<Descriptor | undefined>(memoFileFor(store, layer.diffID, spec), undefined);
}

/**
 * The layer compressed as it streams out (a push), as skopeo does: `stream` carries the compressed
 * bytes once and `digest` resolves when they have all gone through it. Nothing is stored (writing
 * and syncing the compressed copy cost a 512 MiB push a third of its time); the variant's digest
 * is remembered, so a later push can find it in a registry, and compression is deterministic, so
 * compressing again gives the same blob. A consumer that stops early destroys the stream.
 */
export function compressingLayer(store: ContentStore, layer: { diffID: string; descriptor: Descriptor }, spec: CompressionSpec): { stream: Readable; digest: Promise<Descriptor> } {
  const d = layer.descriptor;
  const out = compressStream(openDecompressed(store.openBlob(d.digest), compressionOfMediaType(d.mediaType)), spec);
  const hash = crypto.createHash('sha256');
  let size = 0;
  let settle!: (v: Descriptor) => void;
  let fail!: (e: Error) => void;
  const digest = new Promise<Descriptor>((res, rej) => ((settle = res), (fail = rej)));
  digest.catch(() => undefined);
  const stream = new Transform({
    transform(c: Buffer, _e, cb) {
      hash.update(c);
      size += c.length;
      cb(null, c);
    },
    flush(cb) {
      const desc = { mediaType: mediaTypeFor(spec.type), digest: `sha256:${hash.digest('hex')}`, size };
      rememberVariant(store, layer.diffID, spec, desc, false);
      settle(desc);
      cb();
    },
  });
  out.on('error', (e) => {
    fail(e);
    stream.destroy(e);
  });
  stream.on('close', () => {
    if (!stream.writableFinished) {
      fail(new TsbuildError('PUSH_ABORTED', `the upload of layer ${layer.diffID} stopped before its end`));
      out.destroy();
    }
  });
  out.pipe(stream);
  return { stream, digest };
}

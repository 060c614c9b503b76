/**
 * Build outputs (`--output`, as `docker buildx build -o`): `type=image` (the default: the local store,
 * with `push=true` also the registry), `type=registry` (push the -t names), `type=oci|docker,dest=FILE`
 * (an image archive; `dest=-` is stdout), `type=local,dest=DIR` (the filesystem), and the shorthand
 * `-o DIR`. Every output runs after the image is in the store.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Writable } from 'node:stream';
import { UsageError, TsbuildError } from '../errors/index.js';
import { END_OF_ARCHIVE, MediaType, isIndexDocument, parseCompression, sha256, writeImageArchive, type CompressionSpec, type Descriptor, type ImageConfig, type Manifest } from '../image/index.js';
import { manifestForPush } from '../registry/index.js';
import { imageLayers, mountTar, tempKey, unpackLayers, withMounted, type Store } from '../store/index.js';
import { pushTo, type RegistryOptions } from './registry.js';

export interface OutputSpec {
  type: 'image' | 'registry' | 'oci' | 'docker' | 'local' | 'tar';
  dest?: string;
  names: string[];
  push: boolean;
  compression?: CompressionSpec;
}

const TYPES = new Set(['image', 'registry', 'oci', 'docker', 'local', 'tar']);

export function parseOutputs(values: string[], push: boolean, names: string[]): OutputSpec[] {
  const out: OutputSpec[] = [];
  for (const v of values) {
    if (!v.includes('=')) {
      out.push({ type: 'local', dest: v, names, push: false });
      continue;
    }
    const kv = new Map<string, string>();
    for (const part of v.split(',')) {
      const i = part.indexOf('=');
      if (i < 0) throw new UsageError(`--output ${v}: "${part}" is not key=value`);
      kv.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
    }
    const type = kv.get('type') ?? 'image';
    if (!TYPES.has(type)) throw new UsageError(`--output type=${type}: use image, registry, oci, docker, local or tar`);
    for (const k of kv.keys()) {
      if (!['type', 'dest', 'name', 'push', 'compression', 'compression-level'].includes(k)) throw new UsageError(`--output ${v}: unknown option "${k}"`);
    }
    const spec: OutputSpec = {
      type: type as OutputSpec['type'],
      dest: kv.get('dest'),
      names: kv.get('name') ? kv.get('name')!.split(/[;]/).filter(Boolean) : names,
      push: type === 'registry' || kv.get('push') === 'true',
      compression: kv.get('compression') ? parseCompression(kv.get('compression')!, kv.get('compression-level')) : undefined,
    };
    if ((spec.type === 'oci' || spec.type === 'docker' || spec.type === 'local' || spec.type === 'tar') && !spec.dest) throw new UsageError(`--output type=${type} needs dest=${type === 'local' ? 'DIR' : 'FILE (or - for stdout)'}`);
    if (spec.push && spec.names.length === 0) throw new UsageError(`--output type=${type}${type === 'image' ? ',push=true' : ''} needs an image name: give -t or name=`);
    out.push(spec);
  }
  if (push) {
    if (names.length === 0) throw new UsageError('--push needs an image name: give -t NAME');
    if (!out.some((o) => o.push)) out.push({ type: 'image', names, push: true });
  }
  return out;
}

export interface OutputOptions extends RegistryOptions {
  /** The build's --compression, when given: pushes default to gzip, OCI archives to gzip, Docker archives to none. */
  compression?: CompressionSpec;
  chunkSize?: number;
  signal?: AbortSignal;
  log: (l: string) => void;
  /** File times in archives (SOURCE_DATE_EPOCH). */
  mtime?: number;
  /** Where `dest=-` goes. */
  stdout?: Writable;
}

export async function writeOutputs(store: Store, specs: OutputSpec[], manifestDigest: string, o: OutputOptions): Promise<void> {
  for (const s of specs) {
    if (s.push) {
      for (const n of s.names) {
        const r = await pushTo(store, manifestDigest, n, { ...o, compression: s.compression ?? o.compression ?? { type: 'gzip' } });
        o.log(`pushed ${r.reference}@${r.digest}`);
      }
    }
    if (s.type === 'oci' || s.type === 'docker') {
      const compression = s.compression ?? o.compression ?? ({ type: s.type === 'oci' ? 'gzip' : 'uncompressed' } as CompressionSpec);
      const image = { manifest: await archiveManifest(store, manifestDigest, compression), names: s.names };
      await writeArchive(s.dest!, o.stdout, (out) => writeImageArchive(store.content, s.type as 'oci' | 'docker', image, out, o.mtime));
      if (s.dest !== '-') o.log(`wrote ${s.type} archive ${s.dest}`);
    }
    if (s.type === 'local') await withImageFiles(store, manifestDigest, o.signal, (dir) => copyTree(dir, s.dest!));
    if (s.type === 'tar') {
      // The image's filesystem as one tar (no image metadata), as BuildKit's type=tar.
      await withImageFiles(store, manifestDigest, o.signal, (dir) => writeArchive(s.dest!, o.stdout, (out) => pipeline(dir ? mountTar(dir) : Readable.from([END_OF_ARCHIVE]), out, { end: false })));
      if (s.dest !== '-') o.log(`wrote filesystem tar ${s.dest}`);
    }
  }
}

/**
 * The manifest an archive holds, its layers compressed as asked (manifestForPush stores one it
 * rewrote); for a multi-platform image, an index of its entries made so.
 */
async function archiveManifest(store: Store, digest: string, compression: CompressionSpec): Promise<Descriptor> {
  const head = store.content.readJSON<{ mediaType?: string; manifests?: Descriptor[] }>(digest);
  if (!isIndexDocument(head)) {
    const m = await manifestForPush(store.content, digest, compression);
    return { mediaType: m.mediaType, digest: sha256(m.bytes), size: m.bytes.length };
  }
  const manifests: Descriptor[] = [];
  for (const e of head.manifests ?? []) {
    const m = await manifestForPush(store.content, e.digest, compression);
    manifests.push({ ...e, mediaType: m.mediaType, digest: sha256(m.bytes), size: m.bytes.length });
  }
  const index = await store.content.writeBlob(JSON.stringify({ ...head, manifests }));
  return { mediaType: MediaType.index, ...index };
}

/**
 * Writes to a temp file and renames, so a failed export never leaves a half archive under `dest`.
 * A device or a FIFO there (`-o /dev/null`, a named pipe) is written into instead: a rename would put
 * a regular file where the device was, and as root `/dev/null` is every process's.
 */
async function writeArchive(dest: string, stdout: Writable | undefined, fn: (out: Writable) => Promise<void>): Promise<void> {
  if (dest === '-') {
    if (!stdout) throw new UsageError('dest=- needs a standard output to write to');
    await fn(stdout);
    return;
  }
  const st = fs.statSync(dest, { throwIfNoEntry: false });
  const inPlace = st !== undefined && !st.isFile() && !st.isDirectory();
  const target = inPlace ? dest : `${dest}.tmp-${process.pid}`;
  const out = fs.createWriteStream(target);
  try {
    await fn(out);
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    if (!inPlace) fs.renameSync(target, dest);
  } catch (e) {
    out.destroy();
    if (!inPlace) fs.rmSync(target, { force: true });
    throw e;
  }
}

/** Runs `fn` on a read-only view of the image's merged filesystem (undefined for an image without layers). */
async function withImageFiles(store: Store, manifestDigest: string, signal: AbortSignal | undefined, fn: (dir: string | undefined) => Promise<void>): Promise<void> {
  const manifest = store.content.readJSON<Manifest>(manifestDigest);
  const config = store.content.readJSON<ImageConfig>(manifest.config.digest);
  const env = { storeRoot: store.root, store: store.content, snapshotter: store.snapshotter };
  const top = await unpackLayers(env, imageLayers(manifestDigest, manifest, config), { signal });
  if (!top) return fn(undefined);
  const key = tempKey('view', 'export');
  const mounts = await store.snapshotter.view(key, top);
  try {
    await withMounted(store.root, mounts, (dir) => fn(dir));
  } finally {
    await store.snapshotter.remove(key);
  }
}

/** The image's files copied into `dest` (created when missing), ownership and modes kept. */
async function copyTree(dir: string | undefined, dest: string): Promise<void> {
  fs.mkdirSync(dest, { recursive: true });
  if (!dir) return;
  const r = spawnSync('cp', ['-a', '--reflink=auto', '--', `${dir}/.`, path.resolve(dest)], { encoding: 'utf8' });
  if (r.status !== 0) throw new TsbuildError('EXPORT_FAILED', `copying the image's files to ${dest} failed: ${r.stderr.trim()}`);
}

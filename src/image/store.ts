/**
 * The content store: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) under the store
 * root, readable by other tools (`skopeo inspect oci:<root>:<name>`). Blobs are written to a temp file
 * while hashing, verified, then renamed into place: a blob path either holds verified content or does
 * not exist. `index.json` is the name table, updated under a lock and replaced atomically.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { TsbuildError, NotFoundError, errnoCode } from '../errors/index.js';
import { readJSONFile, withLock, writeFileAtomic, writeFileMirrored, Writeback } from '../fsutil/index.js';
import { normalizeName, validateName } from './names.js';
import { expandIndexes, findById, isIndexDescriptor, manifestsOf, pickManifest } from './indexes.js';
import type { Platform } from './platform.js';
import { MediaType, REF_NAME, type Descriptor, type ImageConfig, type ImageIndex, type Manifest } from './types.js';

/** Marks an index entry for an image without a name. */
export const DANGLING = 'io.tsbuild.dangling';
/** When the image got this name in this store (built, pulled, tagged): configs keep the epoch for reproducibility. */
export const STORED = 'io.tsbuild.stored';

function readIfAny(file: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

/** What an index update returns when it changed nothing (no write). */
const UNCHANGED = Symbol('unchanged');

export class DigestMismatchError extends TsbuildError {
  constructor(expected: string, got: string) {
    super('DIGEST_MISMATCH', `digest mismatch: expected ${expected}, got ${got}; nothing was stored`);
  }
}

function sha256File(file: string): string {
  return `sha256:${crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')}`;
}

/** A stored blob whose bytes do not match its digest. */
export class CorruptBlobError extends TsbuildError {
  constructor(readonly digest: string, readonly file: string, got: string) {
    super('BLOB_CORRUPT', `blob ${digest} in the store is corrupt: ${file} hashes to ${got}; delete that file, then pull or rebuild the image that uses it ("tsbuild rmi" removes the name)`);
  }
}

export interface ImageRecord {
  name: string;
  manifest: Descriptor;
}

export interface ResolvedImage {
  name?: string;
  /** The name's index (a multi-platform image), when it points at one; `manifestDigest` is the chosen entry. */
  index?: Descriptor;
  manifestDigest: string;
  manifest: Manifest;
  configDigest: string;
  config: ImageConfig;
}

export class ContentStore {
  readonly root: string;
  private tmp: string;
  constructor(root: string) {
    this.root = root;
    this.tmp = path.join(root, 'tmp');
    fs.mkdirSync(path.join(root, 'blobs', 'sha256'), { recursive: true });
    fs.mkdirSync(this.tmp, { recursive: true });
    const layout = path.join(root, 'oci-layout');
    if (!fs.existsSync(layout)) writeFileAtomic(layout, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    if (!fs.existsSync(path.join(root, 'index.json')) && fs.existsSync(path.join(root, 'index.json.bak'))) {
      // Deleted by hand or lost with its directory entry: its mirror is the name table, not an empty one.
      writeFileAtomic(path.join(root, 'index.json'), fs.readFileSync(path.join(root, 'index.json.bak')));
    } else if (!fs.existsSync(path.join(root, 'index.json'))) {
      writeFileMirrored(path.join(root, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.index, manifests: [] }));
    }
  }

  blobPath(digest: string): string {
    const [alg, hex] = digest.split(':');
    if (alg !== 'sha256' || !hex || !/^[a-f0-9]{64}$/.test(hex)) throw new TsbuildError('INVALID_DIGEST', `invalid digest ${digest}`);
    return path.join(this.root, 'blobs', 'sha256', hex);
  }
  has(digest: string): boolean {
    return fs.existsSync(this.blobPath(digest));
  }

  /** Streams `data` into the store; verifies `expected` when given. */
  async writeBlob(data: AsyncIterable<Buffer | Uint8Array> | Buffer | string, expected?: { digest?: string; size?: number }): Promise<{ digest: string; size: number }> {
    if (typeof data === 'string' || Buffer.isBuffer(data)) {
      // A small blob in memory (a config, a manifest) that the store already holds intact: no write,
      // no fsync (every cache-hit rebuild makes the same config and manifest again). A damaged copy
      // is replaced below, which is how a rebuild repairs it.
      const buf = Buffer.from(data);
      const digest = 'sha256:' + crypto.createHash('sha256').update(buf).digest('hex');
      const matches = (!expected?.digest || expected.digest === digest) && (expected?.size === undefined || expected.size === buf.length);
      if (matches && readIfAny(this.blobPath(digest))?.equals(buf)) return { digest, size: buf.length };
    }
    const tmp = path.join(this.tmp, `blob-${process.pid}-${crypto.randomBytes(6).toString('hex')}`);
    const hash = crypto.createHash('sha256');
    let size = 0;
    const fh = await fs.promises.open(tmp, 'w', 0o644);
    // Writeback starts behind the writes, not all at the fsync (fsutil/pagecache.ts).
    const behind = new Writeback(fh.fd);
    try {
      const chunks: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer> =
        typeof data === 'string' ? [Buffer.from(data)] : Buffer.isBuffer(data) ? [data] : data;
      // Layers arrive as many small pieces (a 512-byte header per file): batch them into large writes.
      let pending: (Buffer | Uint8Array)[] = [];
      let pendingBytes = 0;
      let written = 0;
      const flush = async () => {
        if (pendingBytes === 0) return;
        await fh.write(pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes));
        behind.written((written += pendingBytes));
        pending = [];
        pendingBytes = 0;
      };
      for await (const c of chunks) {
        hash.update(c);
        size += c.length;
        if (expected?.size !== undefined && size > expected.size) throw new TsbuildError('SIZE_MISMATCH', `blob is larger than the ${expected.size} bytes its descriptor says; nothing was stored`);
        pending.push(c);
        pendingBytes += c.length;
        if (pendingBytes >= 1 << 20) await flush();
      }
      await flush();
      await behind.settle();
      await fh.sync();
    } catch (e) {
      await behind.settle();
      await fh.close();
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    await fh.close();
    const digest = 'sha256:' + hash.digest('hex');
    if ((expected?.digest && expected.digest !== digest) || (expected?.size !== undefined && expected.size !== size)) {
      fs.rmSync(tmp, { force: true });
      throw new DigestMismatchError(expected?.digest ?? `${expected?.size} bytes`, expected?.digest ? digest : `${size} bytes`);
    }
    this.moveIntoPlace(tmp, digest);
    return { digest, size };
  }

  /** Where a download of `digest` grows until it is verified; kept across interruptions to resume. */
  ingestPath(digest: string): string {
    return path.join(this.tmp, `ingest-${this.blobPath(digest).slice(-64)}`);
  }

  /** Moves a file whose content the caller has verified against `digest` into the store. */
  async adoptBlob(file: string, digest: string): Promise<void> {
    const fh = await fs.promises.open(file, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    this.moveIntoPlace(file, digest);
  }

  /**
   * A verified, synced file becomes the blob, or goes when the blob is there already (a concurrent
   * writer was first). A stored blob that is damaged (its size differs, or a small one no longer
   * hashes to its digest) is replaced: producing the same content again repairs it.
   */
  private moveIntoPlace(file: string, digest: string): void {
    const final = this.blobPath(digest);
    const have = fs.statSync(final, { throwIfNoEntry: false });
    if (have && have.size === fs.statSync(file).size && (have.size > 4 << 20 || sha256File(final) === digest)) {
      fs.rmSync(file, { force: true });
      // Produced again: as new as if written now, for GC's protection of what running builds make.
      const now = new Date();
      fs.utimesSync(final, now, now);
    } else fs.renameSync(file, final);
  }

  /**
   * Streams a blob's bytes, hashing them on the way: a blob whose bytes no longer match its digest (a
   * flipped bit on a bad disk, a damaged file) ends the stream with a CorruptBlobError naming the blob
   * and its file, before whatever reads it (a push, an archive, an unpack) can finish with it.
   */
  openBlob(digest: string, range?: { start: number; end: number }): Readable {
    if (!this.has(digest)) throw new NotFoundError(`blob ${digest} is missing from the store: pull or rebuild the image`, 'BLOB_NOT_FOUND');
    const file = this.blobPath(digest);
    // A part of a blob cannot be checked against the whole's digest (the receiver checks the whole).
    if (range) return fs.createReadStream(file, { ...range, highWaterMark: 1 << 20 });
    const src = fs.createReadStream(file, { highWaterMark: 1 << 20 });
    const hash = crypto.createHash('sha256');
    const out = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        const got = `sha256:${hash.digest('hex')}`;
        cb(got === digest ? null : new CorruptBlobError(digest, file, got));
      },
    });
    src.on('error', (e) => out.destroy(e));
    return src.pipe(out);
  }

  /** Hashes a stored blob: undefined if it matches its digest, else the error to report. */
  async checkBlob(digest: string): Promise<CorruptBlobError | NotFoundError | undefined> {
    try {
      for await (const _ of this.openBlob(digest)) {
        // the hash is the point
      }
      return undefined;
    } catch (e) {
      if (e instanceof CorruptBlobError || e instanceof NotFoundError) return e;
      throw e;
    }
  }

  blobSize(digest: string): number {
    return fs.statSync(this.blobPath(digest)).size;
  }

  readBlob(digest: string): Buffer {
    try {
      return fs.readFileSync(this.blobPath(digest));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`blob ${digest} is missing from the store: pull or rebuild the image`, 'BLOB_NOT_FOUND');
      throw e;
    }
  }
  /** A JSON blob (manifest, config); a damaged one is an error naming the blob and its file. */
  readJSON<T>(digest: string): T {
    const bytes = this.readBlob(digest);
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch {
      const got = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
      throw new CorruptBlobError(digest, this.blobPath(digest), got === digest ? 'its digest, but is not valid JSON' : got);
    }
  }

  private indexFile(): string {
    return path.join(this.root, 'index.json');
  }
  private readIndex(): ImageIndex {
    return readJSONFile<ImageIndex>(this.indexFile(), { schemaVersion: 2, manifests: [] });
  }
  /** `fn` changes the name table under its lock; returning `UNCHANGED` skips the write. */
  private updateIndex<T>(fn: (idx: ImageIndex) => T): T {
    return withLock(path.join(this.root, 'index.lock'), () => {
      const idx = this.readIndex();
      const r = fn(idx);
      if (r !== UNCHANGED) writeFileMirrored(this.indexFile(), JSON.stringify({ ...idx, mediaType: MediaType.index }, null, 1));
      return r;
    });
  }

  /** Names → manifests. Alias entries (a bare `name` for `name:latest`, for skopeo) are folded in. */
  list(): ImageRecord[] {
    const out: ImageRecord[] = [];
    for (const m of this.readIndex().manifests) {
      const name = m.annotations?.[REF_NAME];
      // Bare-name aliases (`name` for `name:latest`, kept for skopeo) are not images of their own;
      // a registry port (`localhost:5000/x`) is not a tag.
      if (!name || !(name.includes('@') || name.slice(name.lastIndexOf('/') + 1).includes(':'))) continue;
      out.push({ name, manifest: m });
    }
    return out;
  }

  /**
   * Every named manifest, an index's entries one by one (each with its index), then the unnamed
   * images: for readers that need configs and layers. A damaged index contributes nothing.
   */
  entries(): { name?: string; manifest: Descriptor; index?: Descriptor }[] {
    return [...expandIndexes(this.list(), (d) => this.readJSON(d)), ...this.dangling().map((d) => ({ manifest: d }))];
  }

  /** Built images that have no name (`tsbuild build` without -t), reachable by id as in Docker. */
  dangling(): Descriptor[] {
    return this.readIndex().manifests.filter((m) => m.annotations?.[DANGLING] === 'true');
  }

  /** Records an unnamed image so that its id keeps working until it is removed. */
  addDangling(manifest: Descriptor): void {
    this.updateIndex((idx) => {
      if (idx.manifests.some((m) => m.digest === manifest.digest)) return;
      idx.manifests.push({ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, platform: manifest.platform, annotations: { [DANGLING]: 'true', [STORED]: new Date().toISOString() } });
    });
  }

  /** Drops dangling entries for a manifest (it got a name, or is being removed). */
  removeDangling(digest: string): void {
    this.updateIndex((idx) => {
      idx.manifests = idx.manifests.filter((m) => !(m.digest === digest && m.annotations?.[DANGLING] === 'true'));
    });
  }

  /** Points `name` at a manifest (replacing what it named before). */
  tag(name: string, manifest: Descriptor): void {
    const full = normalizeName(name);
    validateName(full);
    const alias = full.endsWith(':latest') ? full.slice(0, -':latest'.length) : undefined;
    this.updateIndex((idx) => {
      // A name already on this manifest (a rebuild that hit the cache) keeps its entry and its time,
      // as Docker keeps CREATED: nothing is written.
      const named = (n: string) => idx.manifests.some((m) => m.annotations?.[REF_NAME] === n && m.digest === manifest.digest);
      if (named(full) && (alias === undefined || named(alias)) && !idx.manifests.some((m) => m.digest === manifest.digest && m.annotations?.[DANGLING] === 'true')) return UNCHANGED;
      idx.manifests = idx.manifests.filter((m) => {
        const n = m.annotations?.[REF_NAME];
        return n !== full && (alias === undefined || n !== alias);
      });
      const d = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, platform: manifest.platform };
      idx.manifests = idx.manifests.filter((m) => !(m.digest === manifest.digest && m.annotations?.[DANGLING] === 'true'));
      idx.manifests.push({ ...d, annotations: { [REF_NAME]: full, [STORED]: new Date().toISOString() } });
      if (alias) idx.manifests.push({ ...d, annotations: { [REF_NAME]: alias } });
    });
  }

  /** Removes a name; returns the manifest it pointed at. */
  untag(name: string): Descriptor {
    const full = normalizeName(name);
    const alias = full.endsWith(':latest') ? full.slice(0, -':latest'.length) : undefined;
    return this.updateIndex((idx) => {
      const found = idx.manifests.find((m) => m.annotations?.[REF_NAME] === full);
      if (!found) throw new NotFoundError(`no such image: ${name}`, 'IMAGE_NOT_FOUND');
      idx.manifests = idx.manifests.filter((m) => {
        const n = m.annotations?.[REF_NAME];
        return n !== full && (alias === undefined || n !== alias);
      });
      return found;
    });
  }

  /**
   * Finds an image by name, full image id (config digest), manifest or index digest, or an id prefix.
   * A name on an index resolves to its entry for `platform` (default: this machine's).
   */
  resolve(ref: string, platform?: Platform): ResolvedImage {
    const records = this.list();
    const full = ref.includes('@') ? ref : normalizeName(ref);
    let rec = records.find((r) => r.name === full);
    let entry: Descriptor | undefined;
    if (!rec && /^(sha256:)?[a-f0-9]{4,64}$/.test(ref)) {
      const only = findById([...records, ...this.dangling().map((m) => ({ name: '', manifest: m }))], ref, (d) => this.readJSON(d));
      rec = only?.rec;
      entry = only?.entry;
    }
    if (!rec) throw new NotFoundError(`image "${ref}" not found in the local store (${this.root}): build or pull it first, or check "tsbuild images"`, 'IMAGE_NOT_FOUND');
    const chosen = entry ?? pickManifest((d) => this.readJSON(d), rec.manifest, ref, platform);
    const manifest = this.readJSON<Manifest>(chosen.digest);
    const config = this.readJSON<ImageConfig>(manifest.config.digest);
    const index = isIndexDescriptor(rec.manifest) ? rec.manifest : undefined;
    return { name: rec.name || undefined, ...(index ? { index } : {}), manifestDigest: chosen.digest, manifest, configDigest: manifest.config.digest, config };
  }

  /** Every stored blob with its size (for the store's accounting). */
  blobs(): { digest: string; size: number }[] {
    const dir = path.join(this.root, 'blobs', 'sha256');
    return fs.readdirSync(dir).filter((h) => /^[a-f0-9]{64}$/.test(h)).map((h) => ({ digest: `sha256:${h}`, size: fs.statSync(path.join(dir, h)).size }));
  }

  /** Removes every blob that no named manifest reaches (and stale temp files). Returns bytes freed. */
  gcBlobs(extraRoots: string[] = [], keepNewerThan?: number): number {
    return withLock(path.join(this.root, 'index.lock'), () => {
      const keep = new Set<string>(extraRoots);
      for (const m of this.readIndex().manifests) {
        keep.add(m.digest);
        try {
          for (const e of manifestsOf((d) => this.readJSON(d), m)) {
            keep.add(e.digest);
            const man = this.readJSON<Manifest>(e.digest);
            keep.add(man.config.digest);
            for (const l of man.layers) keep.add(l.digest);
          }
        } catch {
          // A damaged manifest no longer says which blobs it needs: delete nothing rather than
          // its layers (they may be all that is left of it); rmi of its name lets GC go on.
          return 0;
        }
      }
      let freed = 0;
      const dir = path.join(this.root, 'blobs', 'sha256');
      for (const hex of fs.readdirSync(dir)) {
        if (keep.has(`sha256:${hex}`)) continue;
        const p = path.join(dir, hex);
        const st = fs.statSync(p, { throwIfNoEntry: false });
        // Written or reused while a build runs: not yet named by what will hold it.
        if (!st || (keepNewerThan !== undefined && st.mtimeMs >= keepNewerThan)) continue;
        freed += st.size;
        fs.rmSync(p, { force: true });
      }
      return freed;
    });
  }
}

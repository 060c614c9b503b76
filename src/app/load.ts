/**
 * `load`: images from a Docker archive (`docker save`: manifest.json, configs, layer tars, plain or
 * compressed) or an OCI archive (oci-layout, index.json, blobs/sha256/…), read as one stream. Every
 * entry goes into the content store as it streams (never into memory, never onto the filesystem by
 * its name); a blob named by digest must hash to that digest, a layer must unpack to the diffID its
 * config lists, and names are written last, so a bad archive leaves no image behind.
 */
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { TsbuildError } from '../errors/index.js';
import { hostPlatform, MediaType, readTar, type Descriptor, type ImageConfig, type Manifest } from '../image/index.js';
import { unpackLayers, withLease, type Store } from '../store/index.js';

export class LoadError extends TsbuildError {
  constructor(message: string) {
    super('LOAD_INVALID', message);
  }
}

interface Stored { digest: string; size: number }

/** Every regular file of the archive stored as a blob, by its path; links resolved to their targets. */
async function ingest(store: Store, input: Readable): Promise<Map<string, Stored>> {
  const files = new Map<string, Stored>();
  const links: [string, string][] = [];
  for await (const e of readTar(input)) {
    const name = e.header.name.replace(/^\.\//, '').replace(/\/$/, '');
    if (e.header.type === 'file') {
      // A path that names its digest (OCI's blobs/sha256/<hex>) is checked while it streams.
      const m = /(?:^|\/)blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
      files.set(name, await store.content.writeBlob(e.body, m ? { digest: `sha256:${m[1]}` } : undefined));
    } else {
      if (e.header.type === 'symlink' || e.header.type === 'hardlink') links.push([name, e.header.linkname]);
      for await (const c of e.body) void c;
    }
  }
  for (const [name, target] of links) {
    const t = files.get(target.replace(/^\.\//, '')) ?? files.get(new URL(target, `file:///${name}`).pathname.slice(1));
    if (t) files.set(name, t);
  }
  return files;
}

function readJSON<T>(store: Store, files: Map<string, Stored>, name: string): T {
  const f = files.get(name);
  if (!f) throw new LoadError(`the archive has no ${name}`);
  try {
    return store.content.readJSON<T>(f.digest);
  } catch (e) {
    throw new LoadError(`${name} in the archive is not valid JSON: ${(e as Error).message}`);
  }
}

/** gzip and zstd by their magic numbers; anything else is a plain tar. */
function layerType(store: Store, digest: string): string {
  const fd = fs.openSync(store.content.blobPath(digest), 'r');
  const head = Buffer.alloc(4);
  fs.readSync(fd, head, 0, 4, 0);
  fs.closeSync(fd);
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaType.layerGzip;
  if (head.readUInt32LE(0) === 0xfd2fb528) return MediaType.layerZstd;
  return MediaType.layer;
}

export interface LoadedImage {
  id: string;
  names: string[];
}

interface Ready extends LoadedImage {
  desc: Descriptor;
}

async function commit(store: Store, manifest: Manifest, config: ImageConfig, names: string[], signal?: AbortSignal): Promise<Ready> {
  if (config.rootfs?.diff_ids?.length !== manifest.layers.length) throw new LoadError(`image config ${manifest.config.digest} lists ${config.rootfs?.diff_ids?.length ?? 0} layers, its manifest ${manifest.layers.length}`);
  // Unpacking verifies every layer against its diffID before anything is named.
  await unpackLayers({ storeRoot: store.root, store: store.content, snapshotter: store.snapshotter }, manifest.layers.map((d, i) => ({ diffID: config.rootfs.diff_ids[i]!, descriptor: d })), { signal });
  const bytes = Buffer.from(JSON.stringify(manifest));
  const m = await store.content.writeBlob(bytes);
  const desc: Descriptor = { mediaType: MediaType.manifest, digest: m.digest, size: m.size, platform: { architecture: config.architecture, os: config.os } };
  return { id: manifest.config.digest, names, desc };
}

async function loadDocker(store: Store, files: Map<string, Stored>, signal?: AbortSignal): Promise<Ready[]> {
  const entries = readJSON<{ Config: string; RepoTags?: string[] | null; Layers: string[] }[]>(store, files, 'manifest.json');
  const out: Ready[] = [];
  for (const e of entries) {
    const cfg = files.get(e.Config);
    if (!cfg) throw new LoadError(`manifest.json names config ${e.Config}, which the archive lacks`);
    const layers = e.Layers.map((l) => {
      const f = files.get(l);
      if (!f) throw new LoadError(`manifest.json names layer ${l}, which the archive lacks`);
      return { mediaType: layerType(store, f.digest), digest: f.digest, size: f.size };
    });
    const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.manifest, config: { mediaType: MediaType.config, digest: cfg.digest, size: cfg.size }, layers };
    out.push(await commit(store, manifest, store.content.readJSON<ImageConfig>(cfg.digest), e.RepoTags ?? [], signal));
  }
  return out;
}

async function loadOci(store: Store, files: Map<string, Stored>, signal?: AbortSignal): Promise<Ready[]> {
  const blob = (d: Descriptor): Stored => {
    const f = files.get(`blobs/sha256/${d.digest.replace(/^sha256:/, '')}`);
    if (!f) throw new LoadError(`the archive lacks blob ${d.digest}`);
    return f;
  };
  const index = readJSON<{ manifests: Descriptor[] }>(store, files, 'index.json');
  const out: Ready[] = [];
  for (const top of index.manifests ?? []) {
    let d = top;
    let m = store.content.readJSON<Manifest & { manifests?: Descriptor[] }>(blob(d).digest);
    if (m.manifests) {
      const host = hostPlatform();
      const pick = m.manifests.find((x) => x.platform?.os === host.os && x.platform?.architecture === host.architecture);
      if (!pick) throw new LoadError(`the archive's index ${d.digest} has no image for ${host.os}/${host.architecture}`);
      d = pick;
      m = store.content.readJSON<Manifest>(blob(d).digest);
    }
    for (const l of [m.config, ...m.layers]) blob(l);
    const ann = top.annotations ?? {};
    // OCI's ref.name is often a bare tag ("latest"): only a full reference names the image.
    const ref = ann['org.opencontainers.image.ref.name'];
    const name = ann['io.containerd.image.name'] ?? (ref && /[:/]/.test(ref) ? ref : undefined);
    out.push(await commit(store, m, store.content.readJSON<ImageConfig>(m.config.digest), name ? [name] : [], signal));
  }
  return out;
}

/** Loads every image of the archive; names are given only once all of them unpacked. */
export async function loadImages(store: Store, input: Readable, o: { signal?: AbortSignal } = {}): Promise<LoadedImage[]> {
  // Blobs land before the names do: a lease keeps them from a GC run meanwhile.
  return withLease(store.root, () => loadLeased(store, input, o));
}

async function loadLeased(store: Store, input: Readable, o: { signal?: AbortSignal }): Promise<LoadedImage[]> {
  let files: Map<string, Stored>;
  try {
    files = await ingest(store, input);
  } catch (e) {
    if (e instanceof TsbuildError && e.code === 'ARCHIVE_INVALID') throw new LoadError(`the input is not an image archive (a tar file): ${e.message}`);
    throw e;
  }
  let ready: Ready[];
  if (files.has('manifest.json')) ready = await loadDocker(store, files, o.signal);
  else if (files.has('index.json') && files.has('oci-layout')) ready = await loadOci(store, files, o.signal);
  else throw new LoadError('this is neither a Docker archive (manifest.json) nor an OCI archive (oci-layout, index.json)');
  for (const r of ready) {
    for (const n of r.names) store.content.tag(n, r.desc);
    if (r.names.length === 0) store.content.addDangling(r.desc);
  }
  return ready.map(({ id, names }) => ({ id, names }));
}

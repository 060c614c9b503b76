/**
 * Image archives, streamed: `oci` is an OCI image layout in a tar (what `skopeo copy oci-archive:`
 * reads); `docker` is the same layout plus Docker's `manifest.json` with uncompressed layers, which
 * `docker load` and `podman load` read. Blobs are written straight from the store; nothing is buffered.
 */
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { encodeHeader, padding, END_OF_ARCHIVE } from './tar.js';
import type { ContentStore } from './store.js';
import { isIndexDescriptor } from './indexes.js';
import { TsbuildError } from '../errors/index.js';
import { MediaType, REF_NAME, type Descriptor, type ImageIndex, type Manifest } from './types.js';

export interface ArchiveImage {
  /** The manifest to write (already in the store, layers compressed as wanted). */
  manifest: Descriptor;
  /** Names for the image (`name:tag`), stored as ref names and Docker RepoTags. */
  names: string[];
}

async function write(out: Writable, chunk: Buffer): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

async function entry(out: Writable, name: string, data: Buffer | { store: ContentStore; digest: string; size: number }, mtime: number): Promise<void> {
  const size = Buffer.isBuffer(data) ? data.length : data.size;
  await write(out, encodeHeader({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime }));
  if (Buffer.isBuffer(data)) await write(out, data);
  else for await (const c of data.store.openBlob(data.digest) as AsyncIterable<Buffer>) await write(out, c);
  const pad = padding(size);
  if (pad.length) await write(out, pad);
}

async function dir(out: Writable, name: string, mtime: number): Promise<void> {
  await write(out, encodeHeader({ name, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime }));
}

export async function writeImageArchive(store: ContentStore, format: 'oci' | 'docker', image: ArchiveImage, out: Writable, mtime = 0): Promise<void> {
  // An image index (a multi-platform image) is an OCI layout's own form: the index and every entry.
  const entries = isIndexDescriptor(image.manifest) ? store.readJSON<ImageIndex>(image.manifest.digest).manifests : [image.manifest];
  if (entries.length !== 1 && format === 'docker') throw new TsbuildError('ARCHIVE_FORMAT', 'a Docker archive holds one platform\'s image: write a multi-platform image as an OCI archive');
  const manifests = entries.map((e) => ({ desc: e, m: store.readJSON<Manifest>(e.digest) }));
  const manifest = manifests[0]!.m;
  const blobs: Descriptor[] = [...(entries[0] === image.manifest ? [] : [image.manifest]), ...manifests.flatMap((x) => [x.desc, x.m.config, ...x.m.layers])];
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.index,
    manifests: (image.names.length ? image.names : ['']).map((n) => ({
      mediaType: image.manifest.mediaType,
      digest: image.manifest.digest,
      size: image.manifest.size,
      ...(n ? { annotations: { [REF_NAME]: format === 'oci' ? (n.split(':').pop() ?? n) : n, 'io.containerd.image.name': n } } : {}),
    })),
  };
  await entry(out, 'oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })), mtime);
  await entry(out, 'index.json', Buffer.from(JSON.stringify(index)), mtime);
  if (format === 'docker') {
    const docker = [{ Config: `blobs/sha256/${manifest.config.digest.slice(7)}`, RepoTags: image.names, Layers: manifest.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`) }];
    await entry(out, 'manifest.json', Buffer.from(JSON.stringify(docker)), mtime);
  }
  await dir(out, 'blobs/', mtime);
  await dir(out, 'blobs/sha256/', mtime);
  const seen = new Set<string>();
  for (const b of blobs) {
    if (seen.has(b.digest)) continue;
    seen.add(b.digest);
    await entry(out, `blobs/sha256/${b.digest.slice(7)}`, { store, digest: b.digest, size: store.blobSize(b.digest) }, mtime);
  }
  await write(out, END_OF_ARCHIVE);
}

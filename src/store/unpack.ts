/**
 * Unpacking: a pulled (or otherwise foreign) image's layers become committed snapshots named by their
 * ChainIDs, which is how locally built layers are named too, so a pulled base and a built one are the
 * same thing to every later step. Each layer is applied onto a mounted view of its parent, decompressed
 * and hashed as it streams; a diffID that does not match the config removes the half-applied snapshot.
 */
import crypto from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { chainIDs, compressionOfMediaType, extractTar, openDecompressed, MediaType, type ContentStore, type Descriptor, type ImageConfig, type Manifest } from '../image/index.js';
import { TsbuildError } from '../errors/index.js';
import { SnapshotError, type Snapshotter } from '../snapshotter/index.js';
import { withMounted } from './mount.js';
import { applyMeta, extractionLimits } from '../runtime/index.js';
import { tempKey } from './keys.js';
import { unsyncedLabels } from './unsynced.js';

export interface UnpackEnv {
  storeRoot: string;
  store: ContentStore;
  snapshotter: Snapshotter;
}

export interface LayerToUnpack {
  diffID: string;
  descriptor: Descriptor;
}

const DOCKER_LAYER_TYPES: Record<string, string> = {
  'application/vnd.docker.image.rootfs.diff.tar.gzip': MediaType.layerGzip,
  'application/vnd.docker.image.rootfs.diff.tar': MediaType.layer,
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': MediaType.layerGzip,
};

/** Docker's layer media types under their OCI names (same bytes), so built images stay pure OCI. */
export function ociLayerType(mediaType: string): string {
  return DOCKER_LAYER_TYPES[mediaType] ?? mediaType;
}

async function exists(s: Snapshotter, key: string): Promise<boolean> {
  try {
    await s.stat(key);
    return true;
  } catch (e) {
    if (e instanceof SnapshotError) return false;
    throw e;
  }
}

export class UnpackError extends TsbuildError {}

/** An image's layers paired with their diffIDs, under OCI media types; a config that disagrees is refused. */
export function imageLayers(name: string, manifest: Manifest, config: ImageConfig): LayerToUnpack[] {
  const diffIDs = config.rootfs.diff_ids;
  if (diffIDs.length !== manifest.layers.length) {
    throw new UnpackError('IMAGE_INVALID', `image ${name}: its config lists ${diffIDs.length} layers but its manifest ${manifest.layers.length}`);
  }
  return manifest.layers.map((d, i) => ({ diffID: diffIDs[i]!, descriptor: { mediaType: ociLayerType(d.mediaType || MediaType.layer), digest: d.digest, size: d.size } }));
}

/**
 * Where a layer's compressed bytes come from while its download runs (a pull that unpacks as it
 * downloads): `open` reads them from the start as they arrive; a read that fails with
 * FOLLOW_RESTARTED (the download started over) is done again from the store after `complete`.
 */
export interface LayerSource {
  open(digest: string): Readable;
  complete(digest: string): Promise<void>;
}

/** Makes sure every layer's snapshot exists; returns the top ChainID (undefined for no layers). */
export async function unpackLayers(env: UnpackEnv, layers: LayerToUnpack[], o: { signal?: AbortSignal; onLayer?: (i: number, d: Descriptor) => void; onWarning?: (message: string) => void; source?: LayerSource } = {}): Promise<string | undefined> {
  const chains = chainIDs(layers.map((l) => l.diffID));
  let have = chains.length;
  while (have > 0 && !(await exists(env.snapshotter, chains[have - 1]!))) have--;
  for (let i = have; i < layers.length; i++) {
    if (o.signal?.aborted) throw new TsbuildError('CANCELLED', 'cancelled');
    const l = layers[i]!;
    o.onLayer?.(i, l.descriptor);
    const parent = i === 0 ? undefined : chains[i - 1];
    const stored = () => env.store.openBlob(l.descriptor.digest);
    try {
      const source = o.source;
      await applyLayer(env, l, parent, chains[i]!, source && !env.store.has(l.descriptor.digest) ? () => source.open(l.descriptor.digest) : stored, o.onWarning);
    } catch (e) {
      if (!(o.source && e instanceof TsbuildError && e.code === 'FOLLOW_RESTARTED')) throw e;
      await o.source.complete(l.descriptor.digest);
      await applyLayer(env, l, parent, chains[i]!, stored, o.onWarning);
    }
  }
  return chains.at(-1);
}

/**
 * One layer onto a mounted view of its parent, hashed as it streams; committed only if its diffID
 * matches. The layer's stream is opened only once the mount is there to take it: a stored blob's
 * verifying stream reports a damaged blob as soon as it has read it, and before its reader is
 * attached that error had no listener and ended the process.
 */
async function applyLayer(env: UnpackEnv, l: LayerToUnpack, parent: string | undefined, chain: string, open: () => Readable, onWarning?: (message: string) => void): Promise<void> {
  const key = tempKey('active', 'unpack');
  await env.snapshotter.prepare(key, parent);
  let input: Readable | undefined;
  try {
    // Volatile: the unpacked files are not waited for on the disk (unsynced.ts says why and what
    // happens to them after a power loss); overlay would otherwise sync its upper at unmount.
    const mounts = await env.snapshotter.mounts(key, { volatile: true });
    const hash = crypto.createHash('sha256');
    const hasher = new Transform({
      highWaterMark: 1 << 20,
      transform(c: Buffer, _e, cb) {
        hash.update(c);
        cb(null, c);
      },
    });
    await withMounted(env.storeRoot, mounts, async (dir) => {
      input = open();
      const src = openDecompressed(input, compressionOfMediaType(l.descriptor.mediaType));
      await Promise.all([pipeline(src, hasher), extractTar(hasher, dir, { whiteouts: true, applyMeta, may: extractionLimits(), onWarning: onWarning && ((m) => onWarning(`layer ${l.descriptor.digest.slice(7, 19)}: ${m}`)) })]);
    });
    const got = 'sha256:' + hash.digest('hex');
    if (got !== l.diffID) {
      throw new UnpackError('DIFFID_MISMATCH', `layer ${l.descriptor.digest} unpacks to ${got}, but the image config says ${l.diffID}: the image is corrupt; remove it and pull again`);
    }
    try {
      await env.snapshotter.commit(chain, key, unsyncedLabels());
    } catch (e) {
      if (!(e instanceof SnapshotError && e.code === 'SNAPSHOT_EXISTS')) throw e;
      await env.snapshotter.remove(key);
    }
  } catch (e) {
    input?.destroy();
    await env.snapshotter.remove(key).catch(() => undefined);
    throw e;
  }
}

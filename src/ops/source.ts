/** Sources: scratch, a local image (its committed snapshot), the build context. */
import { MediaType, type ImageConfig, type Manifest } from '../image/index.js';
import { TsbuildError } from '../errors/index.js';
import { ociLayerType, unpackLayers } from './unpack.js';
import type { OpSpec, OpsEnv, StateRef } from './types.js';

export function scratchState(): StateRef {
  return { kind: 'state', layers: [], history: [] };
}

export async function imageState(env: OpsEnv, op: Extract<OpSpec, { kind: 'image' }>, signal?: AbortSignal): Promise<StateRef> {
  const manifest = env.store.readJSON<Manifest>(op.manifestDigest);
  const config = env.store.readJSON<ImageConfig>(manifest.config.digest);
  const diffIDs = config.rootfs.diff_ids;
  if (diffIDs.length !== manifest.layers.length) {
    throw new TsbuildError('IMAGE_INVALID', `image ${op.name}: its config lists ${diffIDs.length} layers but its manifest ${manifest.layers.length}`);
  }
  const layers = manifest.layers.map((d, i) => ({ diffID: diffIDs[i]!, descriptor: { mediaType: ociLayerType(d.mediaType || MediaType.layer), digest: d.digest, size: d.size } }));
  // Pulled images, and images built with another snapshotter, get their snapshots here.
  const top = await unpackLayers(env, layers, { signal });
  return { kind: 'state', snapshot: top, layers, history: config.history ?? [] };
}

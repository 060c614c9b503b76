/** Sources: scratch, a local image (its committed snapshot), the build context. */
import { chainIDs, MediaType, type ImageConfig, type Manifest } from '../image/index.js';
import { TsbuildError } from '../errors/index.js';
import { SnapshotError } from '../snapshotter/index.js';
import type { OpSpec, OpsEnv, StateRef } from './types.js';

export function scratchState(): StateRef {
  return { kind: 'state', layers: [], history: [] };
}

export async function imageState(env: OpsEnv, op: Extract<OpSpec, { kind: 'image' }>): Promise<StateRef> {
  const manifest = env.store.readJSON<Manifest>(op.manifestDigest);
  const config = env.store.readJSON<ImageConfig>(manifest.config.digest);
  const diffIDs = config.rootfs.diff_ids;
  if (diffIDs.length !== manifest.layers.length) {
    throw new TsbuildError('IMAGE_INVALID', `image ${op.name}: its config lists ${diffIDs.length} layers but its manifest ${manifest.layers.length}`);
  }
  const layers = manifest.layers.map((d, i) => ({ diffID: diffIDs[i]!, descriptor: { ...d, mediaType: d.mediaType || MediaType.layer } }));
  const top = chainIDs(diffIDs).at(-1);
  if (top) {
    try {
      await env.snapshotter.stat(top);
    } catch (e) {
      if (e instanceof SnapshotError) {
        throw new TsbuildError('IMAGE_NOT_UNPACKED', `image ${op.name}: its layers are not unpacked in the ${env.snapshotter.driver} snapshotter; rebuild it`);
      }
      throw e;
    }
  }
  return { kind: 'state', snapshot: top, layers, history: config.history ?? [] };
}

/** Sources: scratch, a local image (its committed snapshot), the build context. */
import type { ImageConfig, Manifest } from '../image/index.js';
import { imageLayers, unpackLayers } from '../store/index.js';
import type { OpSpec, OpsEnv, StateRef } from './types.js';

export function scratchState(): StateRef {
  return { kind: 'state', layers: [], history: [] };
}

export async function imageState(env: OpsEnv, op: Extract<OpSpec, { kind: 'image' }>, signal?: AbortSignal): Promise<StateRef> {
  const manifest = env.store.readJSON<Manifest>(op.manifestDigest);
  const config = env.store.readJSON<ImageConfig>(manifest.config.digest);
  const layers = imageLayers(op.name, manifest, config);
  // Pulled images, and images built with another snapshotter, get their snapshots here.
  const top = await unpackLayers(env, layers, { signal });
  return { kind: 'state', snapshot: top, layers, history: config.history ?? [] };
}

/**
 * Checking and repairing the name table (`index.json`) for `tsbuild doctor`. The table is written with
 * a mirror (`index.json.bak`), so one damaged copy is restored from the other. With neither readable,
 * the names are gone, but not the images: every stored image manifest whose config is present is
 * listed again as an unnamed image (reachable by id, taggable), as Docker lists dangling images.
 */
import path from 'node:path';
import { repairMirrored } from '../fsutil/index.js';
import { DANGLING, STORED, type ContentStore } from './store.js';
import { MediaType, type Descriptor, type ImageIndex, type Manifest } from './types.js';

export interface IndexCheck {
  file: string;
  problem?: string;
  repaired?: string;
}

function validIndex(text: string): boolean {
  try {
    const idx = JSON.parse(text) as ImageIndex;
    return Array.isArray(idx.manifests) && idx.manifests.every((m) => typeof m?.digest === 'string' && /^sha256:[a-f0-9]{64}$/.test(m.digest));
  } catch {
    return false;
  }
}

/** Image manifests among the stored blobs whose config blob is present. */
function storedManifests(store: ContentStore): Descriptor[] {
  const out: Descriptor[] = [];
  for (const b of store.blobs()) {
    if (b.size > 4 << 20) continue; // a manifest is small; a layer is not worth parsing
    let m: Manifest;
    try {
      m = store.readJSON<Manifest>(b.digest);
    } catch {
      continue;
    }
    if (m?.config?.digest === undefined || !Array.isArray(m.layers) || !store.has(m.config.digest)) continue;
    if (m.config.mediaType !== MediaType.config && m.config.mediaType !== 'application/vnd.docker.container.image.v1+json') continue;
    out.push({ mediaType: m.mediaType ?? MediaType.manifest, digest: b.digest, size: b.size });
  }
  return out;
}

export function checkIndex(store: ContentStore, repair: boolean): IndexCheck {
  const file = path.join(store.root, 'index.json');
  let listed = 0;
  const rebuild = () => {
    const now = new Date().toISOString();
    const manifests = storedManifests(store).map((d) => ({ ...d, annotations: { [DANGLING]: 'true', [STORED]: now } }));
    listed = manifests.length;
    return JSON.stringify({ schemaVersion: 2, mediaType: MediaType.index, manifests }, null, 1);
  };
  const r = repairMirrored(file, path.join(store.root, 'index.lock'), validIndex, repair, rebuild);
  if (r === 'ok') return { file };
  const problem = 'not a valid image index (damaged or truncated): no image name can be read';
  if (r === 'damaged') return { file, problem };
  if (r === 'restored') return { file, problem, repaired: 'restored from index.json.bak' };
  return { file, problem, repaired: `no good copy: the names are lost; ${listed} stored image(s) listed again without a name (shown as <none> by "tsbuild images"; name them with "tsbuild tag ID NAME"); the damaged file kept as index.json.damaged-*` };
}

/**
 * A name in the store may point at an image index (a multi-platform build): its entries are the
 * per-platform manifests. These helpers let every reader of names treat both alike.
 */
import { NotFoundError, TsbuildError } from '../errors/index.js';
import { formatPlatform, hostPlatform, selectManifest, type Platform } from './platform.js';
import { MediaType, type Descriptor, type ImageIndex, type Manifest } from './types.js';

const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

/** An OCI image index or a Docker manifest list. */
export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.index || mediaType === DOCKER_LIST;
}

export function isIndexDescriptor(d: Descriptor): boolean {
  return isIndexMediaType(d.mediaType);
}

/** A stored document that is an index: by its media type, or by its list of manifests (the media type is optional). */
export function isIndexDocument(doc: { mediaType?: string; manifests?: unknown }): boolean {
  return isIndexMediaType(doc.mediaType) || (doc.mediaType === undefined && Array.isArray(doc.manifests));
}

/** The manifests a name's descriptor stands for: itself, or an index's entries (nested indexes flattened). */
export function manifestsOf(readJSON: <T>(digest: string) => T, d: Descriptor, depth = 0): Descriptor[] {
  if (!isIndexDescriptor(d)) return [d];
  if (depth > 4) return [];
  return (readJSON<ImageIndex>(d.digest).manifests ?? []).flatMap((m) => manifestsOf(readJSON, m, depth + 1));
}

/** The entry of an index for a platform (default: this machine's); an error listing what it has. */
export function pickManifest(readJSON: <T>(digest: string) => T, d: Descriptor, name: string, platform?: Platform): Descriptor {
  if (!isIndexDescriptor(d)) return d;
  const want = platform ?? hostPlatform();
  const list = manifestsOf(readJSON, d);
  const pick = selectManifest(list, want);
  if (!pick) {
    const have = list.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ');
    throw new NotFoundError(`image "${name}" has no ${formatPlatform(want)} image (it has: ${have || 'none'}): name one with --platform`, 'PLATFORM_NOT_IN_INDEX');
  }
  return pick;
}

/**
 * The image an id prefix names: a name's manifest or index digest, an index entry's digest, or an
 * image id (config digest); an error when several match.
 */
export function findById<R extends { manifest: Descriptor }>(records: R[], ref: string, readJSON: <T>(digest: string) => T): { rec: R; entry?: Descriptor } | undefined {
  const want = ref.startsWith('sha256:') ? ref : `sha256:${ref}`;
  const matches = new Map<string, { rec: R; entry?: Descriptor }>();
  for (const r of records) {
    if (r.manifest.digest.startsWith(want)) matches.set(r.manifest.digest, { rec: r });
    let entries: Descriptor[];
    try {
      entries = manifestsOf(readJSON, r.manifest);
    } catch {
      continue; // a damaged image cannot be matched by its ids; it is named where it is read
    }
    for (const e of entries) {
      let m: Manifest;
      try {
        m = readJSON<Manifest>(e.digest);
      } catch {
        continue;
      }
      if ((e !== r.manifest && e.digest.startsWith(want)) || m.config.digest.startsWith(want)) matches.set(e.digest, { rec: r, entry: e });
    }
  }
  if (matches.size > 1) throw new TsbuildError('AMBIGUOUS_ID', `image id prefix ${ref} matches ${matches.size} images: give more digits`);
  return [...matches.values()][0];
}

/** Named records with each index replaced by its entries (each carrying the index); a damaged index gives none. */
export function expandIndexes(records: { name: string; manifest: Descriptor }[], readJSON: <T>(digest: string) => T): { name: string; manifest: Descriptor; index?: Descriptor }[] {
  return records.flatMap((r) => {
    if (!isIndexDescriptor(r.manifest)) return [{ name: r.name, manifest: r.manifest }];
    try {
      return manifestsOf(readJSON, r.manifest).map((m) => ({ name: r.name, manifest: m, index: r.manifest }));
    } catch {
      return [];
    }
  });
}

/**
 * A multi-platform build's result: an OCI image index of each platform's image, stored and named
 * like an image (pushed as an index, resolved to this machine's entry by `run`). The entries were
 * stored unnamed (dangling), so a crash before the index is named loses nothing GC would keep.
 */
import { MediaType, type ContentStore, type Descriptor, type ImageIndex } from '../image/index.js';

export async function tagIndex(store: ContentStore, manifests: Descriptor[], names: string[], annotations: Record<string, string> = {}): Promise<Descriptor> {
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.index,
    manifests: manifests.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, ...(m.platform ? { platform: m.platform } : {}) })),
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  const { digest } = await store.writeBlob(bytes);
  const desc: Descriptor = { mediaType: MediaType.index, digest, size: bytes.length };
  for (const n of names) store.tag(n, desc);
  // Named through the index now; without a name each stays an unnamed image of its own.
  if (names.length > 0) for (const m of manifests) store.removeDangling(m.digest);
  return desc;
}

/**
 * Layer insight (`inspect --layers`): per layer its size, the step that made it, the files it adds,
 * changes (present in a lower layer) and removes (whiteouts), and its biggest files. Layers are read
 * as streams, one at a time; memory is the set of paths seen, never a layer's content.
 */
import { compressionOfMediaType, openDecompressed, readTar } from '../image/index.js';
import type { Store } from '../store/index.js';
import { byText } from '../fsutil/index.js';

export interface LayerInsight {
  digest: string;
  /** Bytes as stored (compressed, if the layer is). */
  size: number;
  createdBy: string;
  added: number;
  changed: number;
  removed: number;
  /** Bytes of the files' contents. */
  contentBytes: number;
  biggest: { path: string; size: number }[];
}

const clean = (name: string) => `/${name.replace(/^\.?\/+/, '').replace(/\/+$/, '')}`;

export async function layerInsight(store: Store, ref: string, top = 5): Promise<LayerInsight[]> {
  const img = store.content.resolve(ref);
  const steps = (img.config.history ?? []).filter((h) => !h.empty_layer).map((h) => h.created_by ?? '');
  const seen = new Set<string>();
  const out: LayerInsight[] = [];
  for (const [i, l] of img.manifest.layers.entries()) {
    const info: LayerInsight = { digest: l.digest, size: l.size, createdBy: steps[i] ?? '', added: 0, changed: 0, removed: 0, contentBytes: 0, biggest: [] };
    const mine = new Set<string>();
    for await (const e of readTar(openDecompressed(store.content.openBlob(l.digest), compressionOfMediaType(l.mediaType)))) {
      const p = clean(e.header.name);
      const base = p.slice(p.lastIndexOf('/') + 1);
      for await (const _ of e.body) void _; // the content is not needed, only its size
      if (base.startsWith('.wh.')) {
        if (base !== '.wh..wh..opq') info.removed++;
        continue;
      }
      if (e.header.type === 'dir') {
        mine.add(p);
        continue;
      }
      if (seen.has(p)) info.changed++;
      else info.added++;
      mine.add(p);
      info.contentBytes += e.header.size;
      info.biggest.push({ path: p, size: e.header.size });
      if (info.biggest.length > top * 4) info.biggest = info.biggest.sort((a, b) => b.size - a.size).slice(0, top);
    }
    info.biggest = info.biggest.sort((a, b) => b.size - a.size || byText(a.path, b.path)).slice(0, top);
    for (const p of mine) seen.add(p);
    out.push(info);
  }
  return out;
}

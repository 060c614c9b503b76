/**
 * `images --filter`, as Docker's: `dangling=true|false`, `reference=PATTERN` (a glob on the repository
 * or repository:tag; `*` stays within one path component), `label=KEY` or `label=KEY=VALUE`,
 * `before=IMAGE` and `since=IMAGE` (by when the images came into this store). Filters of one key are
 * alternatives; different keys must all match.
 */
import { UsageError } from '../errors/index.js';
import type { Store } from '../store/index.js';
import type { ImageSummary } from './images.js';

export interface ImageFilter {
  dangling?: boolean;
  references: RegExp[];
  labels: { key: string; value?: string }[];
  before?: string;
  since?: string;
}

const KEYS = ['dangling', 'reference', 'label', 'before', 'since'];

function globToRegExp(p: string): RegExp {
  const body = p.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

export function parseImageFilters(values: string[]): ImageFilter {
  const f: ImageFilter = { references: [], labels: [] };
  for (const v of values) {
    const i = v.indexOf('=');
    const k = i < 0 ? v : v.slice(0, i);
    const val = i < 0 ? '' : v.slice(i + 1);
    if (!KEYS.includes(k) || (val === '' && k !== 'label')) throw new UsageError(`--filter ${v}: use ${KEYS.map((x) => `${x}=…`).join(', ')}`);
    if (k === 'dangling') {
      if (val !== 'true' && val !== 'false') throw new UsageError(`--filter dangling=${val}: use true or false`);
      f.dangling = val === 'true';
    } else if (k === 'reference') f.references.push(globToRegExp(val));
    else if (k === 'label') {
      const j = val.indexOf('=');
      f.labels.push(j < 0 ? { key: val } : { key: val.slice(0, j), value: val.slice(j + 1) });
    } else if (k === 'before') f.before = val;
    else f.since = val;
  }
  return f;
}

/** The images that match; `before`/`since` name an image of this store. */
export function filterImages(store: Store, images: ImageSummary[], f: ImageFilter): ImageSummary[] {
  const timeOf = (ref: string): string => {
    const img = store.content.resolve(ref);
    const hit = images.find((i) => i.manifestDigest === img.manifestDigest);
    if (!hit?.created) throw new UsageError(`--filter before/since=${ref}: that image has no time recorded in this store`);
    return hit.created;
  };
  const before = f.before !== undefined ? timeOf(f.before) : undefined;
  const since = f.since !== undefined ? timeOf(f.since) : undefined;
  return images.filter((i) => {
    if (f.dangling !== undefined && (i.name === undefined) !== f.dangling) return false;
    if (f.references.length > 0) {
      if (!i.name) return false;
      const repo = i.name.slice(0, i.name.lastIndexOf(':'));
      if (!f.references.some((r) => r.test(repo) || r.test(i.name!))) return false;
    }
    for (const l of f.labels) {
      const v = i.labels?.[l.key];
      if (v === undefined || (l.value !== undefined && v !== l.value)) return false;
    }
    if (before !== undefined && !(i.created !== undefined && i.created < before)) return false;
    if (since !== undefined && !(i.created !== undefined && i.created > since)) return false;
    return true;
  });
}

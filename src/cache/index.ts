/**
 * cache: the build cache's records (`CacheIndex`: one JSON file per key, written atomically, and the
 * last key material of every step), the stat-keyed checksum memo that spares re-reading an unchanged
 * context, key digests, and `explainMiss`, which says in words what changed between two keys.
 *
 * Imports errors, fsutil and image types only.
 */
export { CacheIndex } from './index-store.js';
export type { CacheRecord, CopyTimes } from './index-store.js';
export { ChecksumMemo, ChecksumMemos, entryChecksum, digestOf } from './checksum.js';
export { explainMiss } from './explain.js';

export { CacheIndex } from './index-store.js';
export type { CacheRecord, StepHistory } from './index-store.js';
export { ChecksumMemo, entryChecksum, digestOf } from './checksum.js';
export { explainMiss } from './explain.js';

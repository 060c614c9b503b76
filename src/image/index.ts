export * from './types.js';
export { sha256, chainIDs, isDigest } from './digest.js';
export { ContentStore, DigestMismatchError, normalizeName, validateName } from './store.js';
export type { ImageRecord, ResolvedImage } from './store.js';
export { diffUpperDir } from './diff.js';
export type { DiffOptions, DiffStats } from './diff.js';
export { encodeHeader, padding, END_OF_ARCHIVE } from './tar.js';
export type { TarHeader, EntryType } from './tar.js';

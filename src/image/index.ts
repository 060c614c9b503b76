/**
 * image: OCI images as data and as bytes. Types and platforms; the content store (an OCI layout:
 * blobs verified while written, names in index.json); layer diff (upperdir walk or tree comparison,
 * byte-ordered, OCI whiteouts, xattrs as PAX records); our own streaming tar reader and writer; safe
 * extraction; parallel gzip and zstd; OCI and Docker archives. Everything large is a stream.
 *
 * Imports errors and fsutil only; kernel work (device nodes, xattrs) is injected by the caller.
 */
export * from './types.js';
export { hostPlatform, parsePlatform, formatPlatform, normalizePlatform, samePlatform, selectManifest, configPlatform } from './platform.js';
export type { Platform } from './platform.js';
export { sha256, chainIDs } from './digest.js';
export { ContentStore, CorruptBlobError, STORED } from './store.js';
export { normalizeName, validateName } from './names.js';
export { isIndexDescriptor, isIndexDocument, isIndexMediaType, manifestsOf, pickManifest } from './indexes.js';
export type { ResolvedImage } from './store.js';
export { checkIndex, type IndexCheck } from './indexrepair.js';
export { diffUpperDir } from './diff.js';
export { encodeHeader, padding, END_OF_ARCHIVE } from './tar.js';
export type { TarHeader } from './tar.js';
export { extractTar } from './extract.js';
export { detectArchive, openDecompressed } from './decompress.js';
export type { Compression } from './decompress.js';
export { readTar } from './tarread.js';
export { diffTrees, treeChanges, keptStat, type EntryStat } from './treediff.js';
export type { UpperDir } from './treediff.js';
export { LayerSplice } from './tarsplice.js';
export { materializeCopiedUpLinks } from './links.js';
export { compressedLayer, compressingLayer, existingCompressed, knownVariant, parseCompression, compressionOfMediaType } from './compress.js';
export type { CompressionSpec } from './compress.js';
export { writeImageArchive } from './archive.js';

/**
 * registry: the OCI distribution protocol. References with Docker's normalisation; a transport of
 * middleware around one HTTP call (auth challenges with scoped tokens, retries with back-off,
 * redirects without credentials across hosts); verified, resumable pulls and pushes of images and
 * blobs; where blobs live (for cross-repository mounts); credentials from Docker's config.json and
 * credential helpers; the registry cache manifest format. Nothing unverified reaches the store.
 *
 * Imports errors, fsutil and image only.
 */
export { parseReference, formatReference, familiarName } from './reference.js';
export type { Reference } from './reference.js';
export { RegistryClient, isLoopbackHost } from './client.js';
export { lookupCredentials, sourceFor } from './credentials.js';
export type { Credentials } from './credentials.js';
export { fetchBlob } from './blobs.js';
export type { TransferEvent } from './blobs.js';
export { pullImage } from './pull.js';
export { pushImage, manifestForPush } from './push.js';
export { BlobSources } from './sources.js';
export { pushCache, pullCacheConfig, encodeInlineCache, CACHE_MOUNT_TYPE, CACHE_CONFIG_TYPE, INLINE_CACHE_ANNOTATION } from './cache.js';
export type { RemoteCacheConfig, RemoteRecord } from './cache.js';

/**
 * store: the on-disk store, one root (`/var/lib/tsbuild`, `--root`, `TSBUILD_ROOT`). Open it with
 * `openStore`, which recovers from any crash first; then `Store` gives the content store (OCI layout),
 * the snapshotter, container records, the build cache index and blob sources. This module also owns
 * what spans those parts: unpacking layers into ChainID snapshots, host mounts of snapshots, temporary
 * snapshot names, GC and crash recovery (one sweep), `doctor` (check and repair), the cache-mount layout
 * and prune policy.
 *
 * Imports only lower modules (image, snapshotter, runtime, registry, cache, fsutil, errors); never ops,
 * builder, planner, app or cli.
 */
export { openStore, storeRoot, readStoreConfig, defaultDriver } from './store.js';
export type { Store, StoreConfig } from './store.js';
export { tempKey } from './keys.js';
export { withMounted } from './mount.js';
export { unpackLayers, imageLayers } from './unpack.js';
export { unsyncedLabels } from './unsynced.js';
export { gcWithCache, storeAccounting } from './gc.js';
export { doctorStore, type DoctorReport, type Finding } from './doctor.js';
export { openLease, withLease, withGcLock, type Lease } from './leases.js';
export type { Accounting } from './gc.js';
export { pruneCache, autoGc, gcConfig, parseSize, parseUntil, reapAfterFull } from './prune.js';
export type { PruneOptions } from './prune.js';
export { cacheMountDir, listCacheMounts, mountTar, restoreMount } from './cachemounts.js';
export type { CacheMountInfo } from './cachemounts.js';

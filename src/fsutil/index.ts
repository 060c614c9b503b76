/**
 * fsutil: filesystem habits every module shares. Atomic writes (temp file, fsync, rename), JSON
 * files that may be missing, file locks that a dead holder does not keep, whether a pid lives, and
 * paths resolved inside a root so that no symlink leads out of it; large bodies written behind their
 * producer in batches, with writeback started behind them; small files made many at a time in C (a layer's apply); the optional native addons loaded; the certificate authorities of NODE_EXTRA_CA_CERTS, applied at the first HTTPS
 * request (bin/tsbuild defers them); whether the running kernel is at least a given release; plain string order for listings; whether a new file already has its owner and mode.
 *
 * Imports errors only.
 */
export { writeFileAtomic, writeFileAtomicChunks, writeAllSync, writeFileMirrored, repairMirrored, readJSONFile, parseJSONText, readTextIfAny, ensureDir, writable, withLock, acquireLock, reapStaleLock, lockHeld, lockOwner, processAlive, processStartTime, sameProcessAlive } from './atomic.js';
export { resolveInRoot, mkdirInRoot, BYTE_PATHS, UTF8_PATHS, type PathCodec } from './inroot.js';
export { walkFiles } from './walk.js';
export { kernelAtLeast, bootId } from './kernel.js';
export { WriteBehind } from './writebehind.js';
export { Writeback, ReadDrop, pageCacheAdvice } from './pagecache.js';
export { loadAddon, optionalAddon, type OptionalAddon } from './addon.js';
export { FileBatch, BATCH_MAX_FILE, fileBatching, type OnFailed } from './filebatch.js';
export { applyDeferredTrust, userEnv, DEFERRED_CA_ENV } from './tlstrust.js';
export { byText } from './order.js';
export { NewFileMeta } from './newfile.js';
export { spreadSubdirectories, ext4WithoutJournal } from './placement.js';

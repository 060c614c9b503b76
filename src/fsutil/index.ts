export { writeFileAtomic, readJSONFile, withLock, acquireLock, processAlive } from './atomic.js';
export { resolveInRoot, mkdirInRoot } from './inroot.js';

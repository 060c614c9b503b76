export { writeFileAtomic, readJSONFile, withLock } from './atomic.js';
export { resolveInRoot, mkdirInRoot } from './inroot.js';

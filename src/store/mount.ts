/**
 * Host-side mounts for ops that write into snapshots from Node (COPY, WORKDIR). Mount points live under
 * `<store>/tmp/mnt/`; a crash leaves at most a mount there, which `recoverStore` unmounts next time.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { hostMountAsync, hostUnmountAsync, toSysMount } from '../runtime/index.js';
import type { Mount } from '../snapshotter/index.js';

export async function withMounted<T>(storeRoot: string, mounts: Mount[], fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = path.join(storeRoot, 'tmp', 'mnt', `${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  let mounted = 0;
  try {
    for (const m of mounts) {
      await hostMountAsync(toSysMount(m), dir);
      mounted++;
    }
    return await fn(dir);
  } finally {
    for (; mounted > 0; mounted--) await hostUnmountAsync(dir);
    fs.rmdirSync(dir);
  }
}

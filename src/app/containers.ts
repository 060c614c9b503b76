/** Container records: list and remove (a running container is refused). */
import { TsbuildError } from '../errors/index.js';
import { processAlive } from '../fsutil/index.js';
import type { ContainerState } from '../runtime/index.js';
import type { Store } from '../store/index.js';

/** Newest first; without `all` only running ones. */
export function listContainers(store: Store, o: { all?: boolean } = {}): ContainerState[] {
  return store.containers.list().filter((c) => o.all || c.status === 'running');
}

/** Removes each container's record and snapshot; returns the references as given. */
export async function removeContainers(store: Store, refs: string[], onRemoved?: (ref: string) => void): Promise<void> {
  for (const ref of refs) {
    const c = store.containers.find(ref);
    if (c.status === 'running' && c.pid && processAlive(c.pid)) {
      throw new TsbuildError('CONTAINER_RUNNING', `container ${ref} is running (tsbuild pid ${c.pid}): stop it first`);
    }
    await store.snapshotter.remove(c.snapshot).catch(() => undefined);
    store.containers.delete(c.id);
    onRemoved?.(ref);
  }
}

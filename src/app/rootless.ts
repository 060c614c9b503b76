/**
 * Rootless entry: an ordinary user's command runs again inside the user's namespace (made on first
 * use, kept by a holder process), where it is root over the user's own ids. See docs/rootless.md.
 */
import { endUserNamespaceHolder, hostIdMapPlan, reexecInUserNamespace, rootlessRunDir, userNamespaceHolder, isRootless } from '../runtime/index.js';
import { TsbuildError } from '../errors/index.js';
import type { Store } from '../store/index.js';

export const ROOTLESS_NO_LIMITS =
  'resource limits are not applied: a rootless tsbuild creates no cgroups (this host delegates none to the user); run as root for --memory, --cpus and --pids-limit';

/** This process must enter the user namespace before doing anything (it is not root). */
export function needsUserNamespace(): boolean {
  return process.getuid?.() !== 0;
}

/**
 * Runs `argv` (the whole command line, node first) inside the user's namespace; resolves to its exit
 * code. The first command of a user (no holder yet) warns when only the user's own id is mapped.
 */
export async function runInUserNamespace(argv: string[], warn: (message: string) => void): Promise<number> {
  const plan = hostIdMapPlan();
  const holder = await userNamespaceHolder(plan);
  if (holder.created && plan.kind === 'single') {
    warn(
      `rootless with one id only (${plan.reason}): files owned by any user but root cannot be created, so images with such files and RUN steps that chown ` +
        'fail (as in podman). Give the user a range (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER), then run "tsbuild system migrate"',
    );
  }
  return reexecInUserNamespace(holder.pid, argv, { ...process.env, TSBUILD_USERNS_DIR: rootlessRunDir() });
}

/**
 * `system migrate` (podman's name): ends the user's namespace holder so the next command makes one
 * with the current /etc/subuid ranges. Refused while containers run in it (they would be lost to tsbuild).
 */
export async function migrateUserNamespace(store: Store): Promise<{ ended?: number }> {
  if (!isRootless()) return {};
  const running = store.containers.list().filter((c) => c.status === 'running' || c.status === 'paused');
  if (running.length) {
    throw new TsbuildError('CONTAINERS_RUNNING', `${running.length} container(s) still run in this user namespace (${running.map((c) => c.name).join(', ')}): stop them first (tsbuild stop NAME)`);
  }
  return { ended: endUserNamespaceHolder() };
}

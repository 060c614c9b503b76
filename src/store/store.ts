/**
 * Where the store lives and opening its parts. Opening runs crash recovery first, so every command
 * starts from a consistent store whatever the last one died of.
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { ContentStore } from '../image/index.js';
import { openSnapshotter, type Snapshotter } from '../snapshotter/index.js';
import { Containers, Networks, Volumes, fuseOverlayUnavailable, isRootless, probeOverlay, rootlessRunDir } from '../runtime/index.js';
import { CacheIndex } from '../cache/index.js';
import { BlobSources } from '../registry/index.js';
import { TsbuildError } from '../errors/index.js';
import { ensureDir, writable } from '../fsutil/index.js';
import { recoverStore } from './recovery.js';
import { settledMessages } from './unsynced.js';
import { registerLive, sweepDue, sweptAfter } from './live.js';

export function storeRoot(flag?: string): string {
  if (flag) return path.resolve(flag);
  if (process.env.TSBUILD_ROOT) return path.resolve(process.env.TSBUILD_ROOT);
  if (process.getuid?.() === 0 && !isRootless()) return '/var/lib/tsbuild';
  return path.join(process.env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local/share'), 'tsbuild');
}

export interface Store {
  root: string;
  content: ContentStore;
  snapshotter: Snapshotter;
  containers: Containers;
  /** Named and anonymous volumes. */
  volumes: Volumes;
  /** The bridge network's endpoints (addresses, namespaces, published ports). */
  networks: Networks;
  /** Build cache records. */
  cache: CacheIndex;
  /** This process cannot write the store: only reading commands work. */
  readOnly?: boolean;
  /** Where pushed and pulled blobs live in registries (for cross-repository mounts). */
  blobSources: BlobSources;
}

export interface StoreConfig {
  snapshotter?: string;
  /** Registries reached over plain HTTP (besides loopback), as Docker's insecure-registries. */
  insecureRegistries?: string[];
  /** Pull policy for FROM and run: missing (default), always, never (offline machines). */
  pull?: string;
  /** Sizes as `10GB` (or a number of bytes): store/prune.ts `gcConfig`. */
  gc?: { keepStorage?: string | number; keepRetired?: string | number };
  /** Limits for every RUN step of every build (the build flags override them). */
  /** Limits of every RUN step when the build gives none: `run`'s flag names, kebab-case or camelCase (`pids-limit`, `pidsLimit`). */
  build?: Record<string, string | number>;
}

/** `<store>/config.json`; missing or unreadable means defaults. */
export function readStoreConfig(root: string): StoreConfig {
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'config.json'), 'utf8')) as StoreConfig;
  } catch {
    return {};
  }
}

/**
 * `--snapshotter`, else `<store>/config.json` `{"snapshotter": "..."}`, else overlayfs; rootless on a
 * kernel that refuses overlay in a user namespace (before 5.11), fuse-overlayfs where installed, else
 * the native driver (docs/rootless.md).
 */
export function defaultDriver(root: string, overlayInUserns: () => boolean = () => overlayWorks(root), fuseAvailable = () => fuseOverlayUnavailable() === undefined): string {
  const configured = readStoreConfig(root).snapshotter;
  if (configured) return configured;
  if (!isRootless() || overlayInUserns()) return 'overlayfs';
  return fuseAvailable() ? 'fuse-overlayfs' : 'native';
}

let overlayVerdict: boolean | undefined;
/**
 * One overlay mount (with userxattr) tried in the store's tmp/; the verdict is kept in the user's
 * runtime directory (gone at reboot, as a kernel change would be), so commands after the first skip it.
 */
function overlayWorks(root: string): boolean {
  if (overlayVerdict !== undefined) return overlayVerdict;
  const memo = path.join(rootlessRunDir(), 'overlay-verdict');
  try {
    overlayVerdict = fs.readFileSync(memo, 'utf8') === 'yes';
    return overlayVerdict;
  } catch {
    // not probed yet
  }
  try {
    overlayVerdict = probeOverlay(path.join(root, 'tmp', `probe-${process.pid}`)) === undefined;
  } catch {
    // A store this process cannot write: nothing to probe with, and nothing it could build either.
    return true;
  }
  try {
    fs.writeFileSync(memo, overlayVerdict ? 'yes' : 'no');
  } catch {
    // probed again next time
  }
  return overlayVerdict;
}

/**
 * Opens the store, recovering first what dead processes left (when a process that worked in it is
 * gone, or once an hour: live.ts; `recover: 'always'` sweeps regardless). `recover: false` is for a
 * detached container's monitor, which starts right after a command that just recovered the same store.
 */
export async function openStore(root: string, driverFlag?: string, o: { recover?: boolean | 'always' } = {}): Promise<Store> {
  if (process.getuid?.() !== 0) {
    // The command line re-runs itself in a user namespace first; only a library caller gets here.
    throw new TsbuildError('NOT_ROOT', 'the store is opened by root or inside tsbuild\'s user namespace: run the tsbuild command, which enters it by itself');
  }
  try {
    ensureDir(root, 0o711);
  } catch (e) {
    throw new TsbuildError('STORE_ROOT', `cannot use ${root} as the store: ${(e as Error).message}; give a writable directory with --root or TSBUILD_ROOT`, { cause: e });
  }
  // In a user namespace a directory of an unmapped owner shows as the overflow id (65534).
  const owner = isRootless() ? fs.statSync(root).uid : 0;
  if (owner !== 0) {
    throw new TsbuildError('STORE_OWNER', `the store ${root} belongs to another user (uid ${owner} here): a rootless tsbuild uses a store of its own; give one with --root or TSBUILD_ROOT (default ~/.local/share/tsbuild)`);
  }
  // A store this process cannot write (a read-only mount, another user's): reading commands work;
  // recovery, which writes, is left to a command that can.
  const readOnly = !writable(root);
  // Before anything of this process is in the store: a kill from here on leaves this file behind,
  // and the next command sweeps (live.ts).
  if (!readOnly) registerLive(root);
  const driver = driverFlag ?? defaultDriver(root);
  const content = new ContentStore(root);
  const snapshotter = openSnapshotter(root, driver, { userNamespace: isRootless() });
  const volumes = new Volumes(root);
  const sweep = o.recover !== false && !readOnly ? sweepDue(root) : undefined;
  if (sweep && (sweep.due || o.recover === 'always')) {
    for (const line of settledMessages(await recoverStore(root, snapshotter))) process.stderr.write(`${line}\n`);
    volumes.sweep();
    sweptAfter(root, sweep.gone);
  }
  return { root, content, snapshotter, readOnly, containers: new Containers(root), volumes, networks: new Networks(root), cache: new CacheIndex(root), blobSources: new BlobSources(path.join(root, 'registry')) };
}

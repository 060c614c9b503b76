/**
 * The snapshotter contract, containerd's in TypeScript.
 *
 * Lifecycle: `prepare(key, parent)` makes an *active* snapshot (writable) on top of a *committed* parent
 * and returns the mounts that present it; the caller mounts them, writes, unmounts, then either
 * `commit(name, key)` turns it into a committed snapshot (usable as a parent) or `remove(key)` throws it
 * away. `view(key, parent)` is a read-only active snapshot that can never be committed or be a parent.
 * Only committed snapshots are parents; a snapshot with children cannot be removed. Mounts are data
 * (`{ type, source, options }`); nothing here mounts anything.
 */
export type Kind = 'active' | 'view' | 'committed';

export interface Mount {
  type: string;
  source: string;
  options: string[];
  /** Directory that relative paths in `options` are relative to (keeps overlay's lowerdir list short). */
  cwd?: string;
}

export interface Info {
  key: string;
  kind: Kind;
  parent?: string;
  created: string;
  labels: Record<string, string>;
}

export interface Usage {
  size: number;
  inodes: number;
}

export interface Snapshotter {
  readonly driver: string;
  prepare(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]>;
  view(key: string, parent?: string, labels?: Record<string, string>): Promise<Mount[]>;
  /**
   * `volatile`: the caller throws this active snapshot's changes away when done (a container removed
   * when it exits), or commits them marked as written unsynced (store/unsynced.ts), so they need not
   * survive a crash: a driver may skip syncing them (overlay's `volatile`: no sync at unmount, fsync a
   * no-op).
   */
  mounts(key: string, o?: { volatile?: boolean }): Promise<Mount[]>;
  commit(name: string, key: string, labels?: Record<string, string>): Promise<void>;
  /** Sets labels of a snapshot (a value of undefined removes that label), as containerd's Update. */
  update(key: string, labels: Record<string, string | undefined>): Promise<void>;
  /**
   * Makes the files of these snapshots durable (syncfs of the filesystems their trees are on): for
   * trees written without a sync, which the kernel otherwise writes back in its own time.
   */
  sync(keys: string[]): Promise<void>;
  remove(key: string): Promise<void>;
  /**
   * As `remove`, but the files are deleted later, by `reapRetired`: the key is free at once and the
   * caller does not wait for a walk of the tree. `bytes` is the size the tree is accounted as.
   */
  retire(key: string, bytes: number): Promise<void>;
  /**
   * Deletes retired trees, oldest first, until those left total at most `keepBytes` (0: all), and
   * then, while `short()` says the filesystem is short of space or inodes, the oldest of those left.
   */
  reapRetired(keepBytes: number, short?: () => boolean): Promise<{ trees: number; bytes: number }>;
  /** The retired trees waiting to be deleted, and the bytes they are accounted as. */
  retired(): { trees: number; bytes: number };
  stat(key: string): Promise<Info>;
  walk(fn: (info: Info) => void | Promise<void>): Promise<void>;
  usage(key: string): Promise<Usage>;
  /** Removes on-disk objects that metadata no longer names (after a crash or a remove). */
  cleanup(): Promise<void>;
  close(): Promise<void>;
  /**
   * The directory holding only this active snapshot's own changes, in overlay's upperdir format
   * (whiteouts as 0/0 char devices, opaque dirs by xattr), when the driver has one: the diff fast path.
   */
  upperDir?(key: string): Promise<string | undefined>;
  /**
   * With `upperDir`: what its changes are compared with, the read-only mounts of the parent's tree (none
   * without a parent), and overlay's index directory (where copied-up hard links are recorded).
   */
  diffBase?(key: string): Promise<{ lower: Mount[]; index: string }>;
  /**
   * For drivers without an upperdir: the full tree of an active snapshot (`upper`) and of its parent
   * (`lower`), which a tree comparison turns into the layer.
   */
  diffDirs?(key: string): Promise<{ lower?: string; upper: string }>;
}

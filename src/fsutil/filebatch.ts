/**
 * Small regular files made many at a time by the files addon (native/files.c): one call into C per
 * batch instead of four or five binding calls per file. The caller decides everything about a file
 * (its resolved host path, bytes, owner, mode, time); the addon creates it (O_EXCL|O_NOFOLLOW), writes
 * it, gives it that owner and mode where open(2) did not, sets its time, and reports the first call
 * that failed. A failed file is handed back: nothing is replaced or removed in C.
 *
 * Optional: without the addon (Node's headers missing at install) or with TSBUILD_FILE_BATCH=0,
 * `FileBatch.open()` answers null and the caller makes each file itself.
 */
import { optionalAddon } from './addon.js';

interface Addon {
  makeFiles(meta: Float64Array, bytes: Buffer, start: number, count: number, status: Int32Array): void;
}

/** Per file in `meta`: path offset, path length, data offset, data length, mode, uid, gid, mtime. */
const FIELDS = 8;
const MAX_FILES = 1024;
const BYTES = 2 << 20;
/** Larger files gain nothing from batching (their write is most of their cost) and would crowd it. */
export const BATCH_MAX_FILE = 64 << 10;

const EMPTY_META = new Float64Array(0);
const EMPTY_BYTES = Buffer.alloc(0);

const CALLS = ['', 'open', 'write', 'fstat', 'fchown', 'fchmod', 'futimens', 'close'];

/**
 * Makes, its own way, a file the batch could not (its name taken: EEXIST; an owner the namespace
 * cannot map), or throws. Synchronous: `data` lives in the batch's buffer, reused after this returns.
 */
export type OnFailed<T> = (tag: T, data: Buffer, call: string, errno: number) => void;

const addon = optionalAddon<Addon>('files', 'TSBUILD_FILE_BATCH');

/** Whether small files are made in batches (for `tsbuild info`): the reason when not. */
export const fileBatching = (): { on: true } | { on: false; reason: string } => addon.status();

/**
 * Files queued in order and made together by one call into C. A batch stops at its first failure,
 * which `onFailed` settles before the rest of the batch is made: the files come out as if made one by
 * one in order. A caller that must see every queued file made (before any other change to the tree)
 * calls `flush`.
 */
export class FileBatch<T> {
  // Made at the first file: an archive without small files (a layer of one large file) pays nothing,
  // and fresh memory costs a page fault per page touched.
  private meta = EMPTY_META;
  private readonly status = new Int32Array(2);
  private bytes = EMPTY_BYTES;
  private readonly tags: T[] = [];
  private used = 0;

  private constructor(
    private readonly addon: Addon,
    private readonly onFailed: OnFailed<T>,
  ) {}

  /** A batch, or null when files must be made one by one (no addon). */
  static open<T>(onFailed: OnFailed<T>): FileBatch<T> | null {
    // The variable is read at every open, not once: the tests compare both ways in one process.
    const a = addon.get();
    return a ? new FileBatch<T>(a, onFailed) : null;
  }

  get size(): number {
    return this.tags.length;
  }

  /**
   * Queues a file of at most BATCH_MAX_FILE bytes (a full queue is flushed first); `path` is the host
   * path as a latin1 string (its bytes are the name's bytes).
   */
  push(tag: T, path: string, data: Buffer, mode: number, uid: number, gid: number, mtime: number): void {
    if (this.bytes === EMPTY_BYTES) {
      this.meta = new Float64Array(MAX_FILES * FIELDS);
      this.bytes = Buffer.allocUnsafe(BYTES);
    }
    if (this.tags.length === MAX_FILES || this.used + path.length + 1 + data.length > BYTES) this.flush();
    const f = this.tags.length * FIELDS;
    const m = this.meta;
    m[f] = this.used;
    const len = this.bytes.write(path, this.used, 'latin1');
    m[f + 1] = len;
    this.used += len;
    this.bytes[this.used++] = 0;
    m[f + 2] = this.used;
    m[f + 3] = data.copy(this.bytes, this.used);
    this.used += data.length;
    m[f + 4] = mode;
    m[f + 5] = uid;
    m[f + 6] = gid;
    m[f + 7] = mtime;
    this.tags.push(tag);
  }

  /** Every queued file made, or settled by onFailed (whose error, if it throws, ends the batch). */
  flush(): void {
    const n = this.tags.length;
    let from = 0;
    try {
      while (from < n) {
        this.addon.makeFiles(this.meta, this.bytes, from, n, this.status);
        const at = this.status[0]!;
        if (at >= n) break;
        const f = at * FIELDS;
        const err = this.status[1]!;
        this.onFailed(this.tags[at]!, this.bytes.subarray(this.meta[f + 2]!, this.meta[f + 2]! + this.meta[f + 3]!), CALLS[err >>> 16] ?? 'unknown', err & 0xffff);
        from = at + 1;
      }
    } finally {
      this.tags.length = 0;
      this.used = 0;
    }
  }
}

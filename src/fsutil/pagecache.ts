/**
 * Page cache advice for large streamed writes. Writeback starts behind the writes (`Writeback`),
 * window by window, instead of all at the final fsync. A reader that follows a downloading blob drops
 * what it has read once it is written back (`ReadDrop`): left to itself the kernel keeps every written
 * page, so a pull of a 512 MiB layer took a gigabyte of fresh pages (the blob and the unpacked file).
 * Fresh pages are not free: on a VM whose host takes back free memory (a balloon with free page
 * reporting) each first touch is a host fault, and the same pull spent 0.5-0.9 s more in the kernel
 * after the machine had sat idle. Pages given back during the pull are reused by its next writes.
 * Unpacked files keep theirs (`run` reads them next).
 *
 * Advice only: without the addon (no Node headers at install), on a file that refuses it, or with
 * TSBUILD_PAGECACHE_ADVICE=0, nothing is done and nothing changes but memory use and timing.
 */
import { optionalAddon } from './addon.js';

/** Both run on the thread pool (either can wait for the disk); length 0 means to the end of the file. */
interface Addon {
  startWriteback(fd: number, offset: number, length: number): Promise<void>;
  dropCache(fd: number, offset: number, length: number): Promise<void>;
}

/** Writeback starts per window; a reader drops what it read a window ago (written back by then). */
const WINDOW = 8 << 20;

// Without it (not built, a stale or foreign build) the writes work as they always did.
const addon = optionalAddon<Addon>('pagecache', 'TSBUILD_PAGECACHE_ADVICE');
const load = () => addon.get();

/** Whether page cache advice is given (for `tsbuild info`): the reason when not. */
export const pageCacheAdvice = (): { on: true } | { on: false; reason: string } => addon.status();

/**
 * Advice for one descriptor, one call at a time, in order. The first refusal (a pipe, a filesystem
 * without writeback) ends the advice for it; the writes go on. `settle()` before closing the
 * descriptor: a call still queued would otherwise advise whatever file reuses its number.
 */
class Advisor {
  private chain: Promise<void> = Promise.resolve();
  private off = false;

  constructor(protected readonly fd: number) {}

  protected advise(call: (a: Addon) => Promise<void>): void {
    const a = load();
    if (!a || this.off) return;
    this.chain = this.chain.then(() => (this.off ? undefined : call(a))).catch(() => {
      this.off = true;
    });
  }

  /** Waits for the advice given so far. Never throws. */
  settle(): Promise<void> {
    return this.chain;
  }
}

/**
 * Starts writeback behind one file written front to back: `written(upTo)` after each write starts
 * it for every full window, `done()` for the rest. A large file's final fsync then has little left
 * to wait for, and the dirty pages never pile up: a cold build of one 512 MiB layer, interleaved,
 * 5 rounds: 3.3 s without, 1.8 s with (the same with its pages dropped as well, so they are kept
 * for the push that reads the blob next).
 */
export class Writeback extends Advisor {
  private queued: number;

  constructor(fd: number, start = 0) {
    super(fd);
    this.queued = start;
  }

  written(upTo: number): void {
    if (upTo - this.queued < WINDOW) return;
    const [from, length] = [this.queued, upTo - this.queued];
    this.queued = upTo;
    this.advise((a) => a.startWriteback(this.fd, from, length));
  }

  /** The file is complete: writeback of the rest starts; resolves once the advice is given. */
  done(): Promise<void> {
    const from = this.queued;
    this.advise((a) => a.startWriteback(this.fd, from, 0));
    return this.settle();
  }
}

/**
 * For a reader that follows a file as it is written (its writer starts the writeback): `read(upTo)`
 * drops what it read more than a window ago, which is written back by then (pages still dirty are
 * skipped); `end()`, once the file is complete and synced, drops the rest of what it read.
 */
export class ReadDrop extends Advisor {
  private from = 0;

  read(upTo: number): void {
    if (upTo - WINDOW - this.from < WINDOW) return;
    this.drop(upTo - WINDOW);
  }

  end(readUpTo: number): Promise<void> {
    if (readUpTo > this.from) this.drop(readUpTo);
    return this.settle();
  }

  private drop(to: number): void {
    const from = this.from;
    this.from = to;
    this.advise((a) => a.dropCache(this.fd, from, to - from));
  }
}

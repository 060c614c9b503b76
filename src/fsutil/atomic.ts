/**
 * Crash-safe file updates and a cross-process lock. Metadata is written to a temp file, fsynced and
 * renamed over the old one, so a reader (or the next command after a `kill -9`) sees either the old or
 * the new content, never a torn one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TsbuildError, errnoCode } from '../errors/index.js';

export function writeFileAtomic(file: string, data: string | Buffer, o: { sync?: boolean } = {}): void {
  writeFileAtomicChunks(file, [data], o);
}

/**
 * For the store's irreplaceable tables (image names, snapshot records): the same content also goes to
 * `FILE.bak`, written after FILE, so one damaged copy (a flipped bit, a truncation by a bad disk) can
 * be restored from the other by `tsbuild doctor --repair`, at most one update behind.
 */
export function writeFileMirrored(file: string, data: string | Buffer): void {
  writeFileAtomic(file, data);
  // Not fsynced: the mirror serves when the table itself is damaged, and is at most one update behind;
  // a second fsync per update would tax every snapshot and tag for a rare repair.
  writeFileAtomicChunks(`${file}.bak`, [data], { sync: false });
}

/**
 * The check and repair of a table written with writeFileMirrored (for `tsbuild doctor`): `ok` when it
 * reads well (with `repair`, a lagging or damaged mirror is brought level); `damaged` when it does not
 * and `repair` is off; `restored` from a mirror that reads well; else `rebuilt` from `rebuild()`, the
 * damaged file kept beside it as FILE.damaged-<ms>. `valid` says whether a text is a good table.
 */
export function repairMirrored(file: string, lock: string, valid: (text: string) => boolean, repair: boolean, rebuild: () => string): 'ok' | 'damaged' | 'restored' | 'rebuilt' {
  const text = readTextIfAny(file);
  if (text === undefined || valid(text)) {
    if (text !== undefined && repair && readTextIfAny(`${file}.bak`) !== text) {
      withLock(lock, () => {
        const now = readTextIfAny(file);
        if (now !== undefined) writeFileAtomicChunks(`${file}.bak`, [now], { sync: false });
      });
    }
    return 'ok';
  }
  if (!repair) return 'damaged';
  return withLock(lock, () => {
    const bak = readTextIfAny(`${file}.bak`);
    if (bak !== undefined && valid(bak)) {
      writeFileMirrored(file, bak);
      return 'restored';
    }
    fs.renameSync(file, `${file}.damaged-${Date.now()}`);
    writeFileMirrored(file, rebuild());
    return 'rebuilt';
  });
}

/** writeFileAtomic for content made piece by piece, so a large record never exists as one string. */
export function writeFileAtomicChunks(file: string, chunks: Iterable<string | Buffer>, o: { sync?: boolean } = {}): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const fd = fs.openSync(tmp, 'w', 0o644);
  try {
    for (const c of chunks) fs.writeSync(fd, typeof c === 'string' ? Buffer.from(c) : c);
    if (o.sync !== false) fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

/** A file's text, or undefined when it cannot be read (absent, unreadable): for checks that say why. */
export function readTextIfAny(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function readJSONFile<T>(file: string, fallback: T): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return fallback;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new TsbuildError('STORE_CORRUPT', `${file} is not valid JSON (${(e as Error).message}): the store is damaged there. Run "tsbuild doctor" to see what else is, and "tsbuild doctor --repair" to restore or rebuild what it can.`, { cause: e });
  }
}

/**
 * Creates `dir` and its missing parents, one component at a time. Node's recursive mkdirSync loops
 * for ever where a parent refuses new entries with ENOENT (under /proc, for one); this fails at once
 * with the path and the reason.
 */
/** This process may write `p` (its permission bits, mount flags and owner, as the kernel checks them). */
export function writable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function ensureDir(dir: string, mode = 0o755): void {
  const missing: string[] = [];
  for (let cur = path.resolve(dir); !fs.existsSync(cur); ) {
    missing.unshift(cur);
    const up = path.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode });
    } catch (e) {
      if (errnoCode(e) === 'EEXIST') continue;
      throw new TsbuildError('MKDIR', `cannot create ${d}: ${(e as Error).message.replace(/^[A-Z]+: /, '')}`, { cause: e });
    }
  }
}

/**
 * Whether a process lives (EPERM means it does, owned by someone else). A zombie does not: it has
 * died and waits for a parent (or an init) that may be slow to reap it.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return errnoCode(e) === 'EPERM';
  }
  return !/^[ZX]$/.test(procStat(pid)?.[0] ?? '');
}

/** The fields of /proc/PID/stat after the command name (state first), or undefined if it is gone. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * When a process started (clock ticks since boot, /proc/PID/stat field 22): with the pid, it names
 * one process for ever, so a recycled pid is never mistaken for the one recorded.
 */
export function processStartTime(pid: number): number | undefined {
  const f = procStat(pid);
  return f ? Number(f[19]) : undefined;
}

/** The process `pid` that started at `start` is alive (a recycled pid is not, nor a zombie). */
export function sameProcessAlive(pid: number, start: number | undefined): boolean {
  return processAlive(pid) && (start === undefined || processStartTime(pid) === start);
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * Runs `fn` while holding an exclusive lock on `lockPath` (a directory created atomically). A lock left
 * by a dead process (kill -9) is taken over. Held only for short metadata updates, so waiting is a spin.
 */
/**
 * One attempt at a lock directory: taken, or held by a live owner (a dead owner's lock is taken over).
 * The directory appears with its owner file already in it (made aside, then renamed into place), so a
 * kill can never leave a lock that names no owner. An empty lock directory (an older tsbuild killed
 * between its mkdir and its owner file) is replaced by the rename itself; one with other content but
 * no owner is taken over once it is a few seconds old.
 */
function tryTake(lockPath: string): { taken: true } | { taken: false; owner: number } {
  for (;;) {
    const tmp = `${lockPath}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    fs.mkdirSync(tmp);
    fs.writeFileSync(path.join(tmp, 'owner'), String(process.pid));
    try {
      fs.renameSync(tmp, lockPath);
      return { taken: true };
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      if (errnoCode(e) !== 'EEXIST' && errnoCode(e) !== 'ENOTEMPTY') throw e;
      let owner = 0;
      try {
        owner = parseInt(fs.readFileSync(path.join(lockPath, 'owner'), 'utf8'), 10);
      } catch {
        // no owner file: an old-style lock, or one just released
      }
      const stale = owner ? owner !== process.pid && !processAlive(owner) : ownerlessAndOld(lockPath);
      if (stale) {
        fs.rmSync(lockPath, { recursive: true, force: true });
        continue;
      }
      return { taken: false, owner };
    }
  }
}

/** Removes the lock at `lockPath` if its owner is gone (by taking it, so a live owner keeps it). */
export function reapStaleLock(lockPath: string): void {
  if (tryTake(lockPath).taken) release(lockPath);
}

function ownerlessAndOld(lockPath: string): boolean {
  const st = fs.statSync(lockPath, { throwIfNoEntry: false });
  return st !== undefined && Date.now() - st.mtimeMs > 5_000;
}

/**
 * Runs `fn` while holding an exclusive lock on `lockPath` (a directory created atomically). A lock left
 * by a dead process (kill -9) is taken over. Held only for short metadata updates, so waiting is a spin.
 */
export function withLock<T>(lockPath: string, fn: () => T, timeoutMs = 60_000): T {
  const deadline = Date.now() + timeoutMs;
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    const t = tryTake(lockPath);
    if (t.taken) break;
    if (Date.now() > deadline) {
      throw new TsbuildError('LOCK_TIMEOUT', `timed out waiting for lock ${lockPath} held by pid ${t.owner || '?'}; if no tsbuild is running, remove that directory`);
    }
    sleepMs(delay);
  }
  try {
    return fn();
  } finally {
    release(lockPath);
  }
}

/**
 * Releases a held lock: renamed aside first (atomic), then removed, so the lock path is never an empty
 * directory that another process's rename could land on while this one is still deleting it.
 */
function release(lockPath: string): void {
  const gone = `${lockPath}.old-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    fs.renameSync(lockPath, gone);
  } catch {
    return; // already gone (taken over as stale: we were presumed dead)
  }
  // A lock holds its owner file alone: two calls, where a recursive removal walks it first (every
  // cache hit of a build takes and releases the GC lock).
  try {
    fs.unlinkSync(path.join(gone, 'owner'));
    fs.rmdirSync(gone);
  } catch {
    fs.rmSync(gone, { recursive: true, force: true });
  }
}

/**
 * An exclusive lock held across async work (a cache mount during a RUN): the same lock directory
 * with an owner pid as `withLock`, taken over when its owner died. With `wait: false` it returns
 * undefined instead of waiting. The returned function releases it.
 */
export async function acquireLock(lockPath: string, opts: { wait: boolean; signal?: AbortSignal }): Promise<(() => void) | undefined> {
  // From 2 ms: the GC lock is held for one cache lookup, and stages loading side by side meet on it.
  for (let delay = 2; ; delay = Math.min(delay * 2, 250)) {
    if (tryTake(lockPath).taken) return () => release(lockPath);
    if (!opts.wait) return undefined;
    if (opts.signal?.aborted) throw opts.signal.reason;
    await new Promise((r) => setTimeout(r, delay));
  }
}

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

/** All of `b` written at the descriptor's position, however many writes it takes (a write may take less). */
export function writeAllSync(fd: number, b: Buffer): number {
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off);
  return off;
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
  return parseJSONText<T>(text, file);
}

/** `text`, read from the store's `file`, parsed; a damaged file is a STORE_CORRUPT error that says what to run. */
export function parseJSONText<T>(text: string, file: string): T {
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

// Made on first use: a startup snapshot cannot hold a SharedArrayBuffer.
let sleeper: Int32Array | undefined;
function sleepMs(ms: number): void {
  Atomics.wait((sleeper ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, ms);
}

/**
 * One attempt at a lock: taken, or held by a live owner (a dead owner's lock is taken over). A lock
 * is a symbolic link whose target names its owner (`<pid>-<random>`): made in one call with its owner
 * in it, so a kill can never leave a lock that names no owner, and released with one unlink. (It was
 * a directory with an owner file, made aside and renamed in: six metadata writes per lock and
 * release against two, and every cache hit of a build takes the GC lock.) A lock directory left by
 * an older tsbuild is still read, and taken over the same way when its owner is gone.
 */
function tryTake(lockPath: string): { taken: true; token: string } | { taken: false; owner: number } {
  const token = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  for (;;) {
    try {
      fs.symlinkSync(token, lockPath);
      return { taken: true, token };
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    const held = lockHolder(lockPath);
    if (held === undefined) continue; // released in between
    const owner = parseInt(held.owner, 10) || 0;
    const stale = owner ? owner !== process.pid && !processAlive(owner) : ownerlessAndOld(lockPath);
    if (!stale) return { taken: false, owner };
    takeOverStale(lockPath, held.owner);
  }
}

/** What holds a lock: its owner text, or undefined when there is no lock. */
function lockHolder(lockPath: string): { owner: string; dir: boolean } | undefined {
  try {
    return { owner: fs.readlinkSync(lockPath), dir: false };
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    if (errnoCode(e) !== 'EINVAL') throw e;
  }
  // Not a link: an older tsbuild's lock directory (an owner file inside, or none if it was killed
  // between its mkdir and its owner file).
  try {
    return { owner: fs.readFileSync(path.join(lockPath, 'owner'), 'utf8'), dir: true };
  } catch {
    return fs.existsSync(lockPath) ? { owner: '', dir: true } : undefined;
  }
}

/**
 * Removes a dead owner's lock. It is renamed aside first and checked there: if another process took
 * it over and made a lock of its own between our look and the rename, that lock is put back.
 */
function takeOverStale(lockPath: string, seen: string): void {
  const aside = `${lockPath}.old-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    fs.renameSync(lockPath, aside);
  } catch {
    return; // gone already: someone else took it over
  }
  const got = lockHolder(aside);
  if (got && !got.dir && got.owner !== seen) {
    try {
      fs.renameSync(aside, lockPath);
      return;
    } catch {
      // the directory it was in is gone: nothing to give back to
    }
  }
  fs.rmSync(aside, { recursive: true, force: true });
}

/** Removes the lock at `lockPath` if its owner is gone (by taking it, so a live owner keeps it). */
export function reapStaleLock(lockPath: string): void {
  const t = tryTake(lockPath);
  if (t.taken) release(lockPath, t.token);
}

/** The pid holding the lock at `lockPath`, or undefined when none (or it names none). */
export function lockOwner(lockPath: string): number | undefined {
  return parseInt(lockHolder(lockPath)?.owner ?? '', 10) || undefined;
}

/** Whether someone holds the lock at `lockPath` (a link that does not resolve still counts). */
export function lockHeld(lockPath: string): boolean {
  return fs.lstatSync(lockPath, { throwIfNoEntry: false }) !== undefined;
}

function ownerlessAndOld(lockPath: string): boolean {
  const st = fs.lstatSync(lockPath, { throwIfNoEntry: false });
  return st !== undefined && Date.now() - st.mtimeMs > 5_000;
}

/**
 * Runs `fn` while holding an exclusive lock on `lockPath` (a symbolic link naming its owner). A lock
 * left by a dead process (kill -9) is taken over. Held only for short metadata updates, so waiting is
 * a spin.
 */
export function withLock<T>(lockPath: string, fn: () => T, timeoutMs = 60_000): T {
  const deadline = Date.now() + timeoutMs;
  fs.mkdirSync(path.dirname(lockPath), { recursive: true });
  let token: string;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    const t = tryTake(lockPath);
    if (t.taken) {
      token = t.token;
      break;
    }
    if (Date.now() > deadline) {
      throw new TsbuildError('LOCK_TIMEOUT', `timed out waiting for lock ${lockPath} held by pid ${t.owner || '?'}; if no tsbuild is running, remove it (rm -r ${lockPath})`);
    }
    sleepMs(delay);
  }
  try {
    return fn();
  } finally {
    release(lockPath, token);
  }
}

/** Releases a lock we hold: one unlink, unless it is no longer ours (taken over: we were presumed dead). */
function release(lockPath: string, token: string): void {
  try {
    if (fs.readlinkSync(lockPath) === token) fs.unlinkSync(lockPath);
  } catch {
    // already gone
  }
}

/**
 * An exclusive lock held across async work (a cache mount during a RUN): the same lock as
 * `withLock`, taken over when its owner died. With `wait: false` it returns
 * undefined instead of waiting. The returned function releases it.
 */
export async function acquireLock(lockPath: string, opts: { wait: boolean; signal?: AbortSignal }): Promise<(() => void) | undefined> {
  if (!opts.wait) {
    const t = tryTake(lockPath);
    return t.taken ? () => release(lockPath, t.token) : undefined;
  }
  // Waiters of this process queue for it, and the next one goes the moment the holder lets go:
  // stages loading from the cache side by side meet on the GC lock at every lookup, and a poll
  // made each wait at least 2 ms. The file is still what excludes other processes.
  const before = inProcess.get(lockPath);
  let done!: () => void;
  const mine = new Promise<void>((r) => (done = r));
  const tail = before ? before.then(() => mine) : mine;
  inProcess.set(lockPath, tail);
  const letGo = () => {
    done();
    if (inProcess.get(lockPath) === tail) inProcess.delete(lockPath);
  };
  try {
    if (before) await waitTurn(before, opts.signal);
    // From 2 ms: another process holds it for one cache lookup.
    for (let delay = 2; ; delay = Math.min(delay * 2, 250)) {
      const t = tryTake(lockPath);
      if (t.taken) {
        return () => {
          release(lockPath, t.token);
          letGo();
        };
      }
      if (opts.signal?.aborted) throw opts.signal.reason;
      await new Promise((r) => setTimeout(r, delay));
    }
  } catch (e) {
    letGo();
    throw e;
  }
}

/** The last waiter for each lock path in this process (see acquireLock). */
const inProcess = new Map<string, Promise<void>>();

/** Waits for `turn`, or throws when `signal` aborts first; leaves no listener on the signal. */
async function waitTurn(turn: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return turn;
  if (signal.aborted) throw signal.reason;
  let onAbort!: () => void;
  const stop = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([turn, stop]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Volumes: `volumes/<name>/_data` (Docker's layout) and `volumes/<name>/volume.json`, written atomically
 * under the store's volume lock. A volume is made by `volume create`, or on first use by `-v NAME:/path`
 * or an image's VOLUME (anonymous: a 64-hex name). Which containers use a volume is read from the
 * container records, never stored twice, so a crash cannot leave a stale count.
 *
 * Also here: a container's mount list (binds, volumes, tmpfs) turned into the spec's mounts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError, TsbuildError, UsageError } from '../errors/index.js';
import { byText, ensureDir, readJSONFile, walkFiles, withLock, writeFileAtomic } from '../fsutil/index.js';
import { MS } from './mounts.js';
import type { SpecMount } from './spec.js';

export interface VolumeInfo {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  /** The local driver's `-o type=… device=… o=…`. */
  Options: Record<string, string>;
  Scope: 'local';
  /** Made for an image VOLUME or `-v /path`: `run --rm` and `rm -v` remove it. */
  Anonymous?: boolean;
}

/** One entry of a container's mount list (`-v`, `--mount`, `--tmpfs`, VOLUME, `--volumes-from`). */
export interface MountConfig {
  type: 'bind' | 'volume' | 'tmpfs';
  /** Host path (bind), volume name (volume); empty for tmpfs. */
  source: string;
  target: string;
  readonly: boolean;
  /** rprivate (default), private, rslave, slave, rshared, shared: binds only. */
  propagation?: string;
  /** Do not fill an empty volume from the image (volume-nocopy, `:nocopy`). */
  nocopy?: boolean;
  /** tmpfs size in bytes and mode (octal), and extra options such as exec. */
  tmpfsSize?: number;
  tmpfsMode?: number;
  options?: string[];
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

export class Volumes {
  readonly dir: string;
  constructor(storeRoot: string) {
    this.dir = path.join(storeRoot, 'volumes');
  }

  private lock<T>(fn: () => T): T {
    ensureDir(this.dir);
    return withLock(path.join(this.dir, '.lock'), fn);
  }

  dataDir(name: string): string {
    return path.join(this.dir, name, '_data');
  }

  get(name: string): VolumeInfo | undefined {
    if (!NAME.test(name)) return undefined;
    return readJSONFile<VolumeInfo | undefined>(path.join(this.dir, name, 'volume.json'), undefined);
  }

  list(): VolumeInfo[] {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    // A damaged record does not hide the others; `volume rm` still removes it.
    const safe = (n: string) => {
      try {
        return this.get(n);
      } catch {
        return undefined;
      }
    };
    return names.map(safe).filter((v): v is VolumeInfo => v !== undefined).sort((a, b) => byText(a.Name, b.Name));
  }

  /**
   * Makes a volume, or returns the one of that name (as Docker does: creating an existing volume is
   * not an error unless its options differ). Without a name, an anonymous volume is made.
   */
  create(name?: string, o: { options?: Record<string, string>; labels?: Record<string, string>; anonymous?: boolean } = {}): VolumeInfo {
    const n = name ?? crypto.randomBytes(32).toString('hex');
    if (!NAME.test(n)) throw new UsageError(`invalid volume name "${n}": use at least two characters, letters, digits, _ . - (starting with a letter or digit)`);
    checkOptions(o.options ?? {});
    return this.lock(() => {
      const cur = this.get(n);
      if (cur) {
        if (o.options && Object.keys(o.options).length > 0 && JSON.stringify(cur.Options) !== JSON.stringify(o.options)) {
          throw new TsbuildError('VOLUME_EXISTS', `volume ${n} already exists with other options (${JSON.stringify(cur.Options)}): remove it first or use another name`);
        }
        return cur;
      }
      const info: VolumeInfo = {
        Name: n, Driver: 'local', Mountpoint: this.dataDir(n), CreatedAt: new Date().toISOString(), Labels: o.labels ?? {},
        Options: o.options ?? {}, Scope: 'local', ...(o.anonymous ? { Anonymous: true } : {}),
      };
      // The data directory first, the record last: a record always has its directory.
      fs.mkdirSync(info.Mountpoint, { recursive: true, mode: 0o755 });
      writeFileAtomic(path.join(this.dir, n, 'volume.json'), JSON.stringify(info, null, 2));
      return info;
    });
  }

  /** Removes a volume's record, then its data (a crash in between leaves only an unlisted directory). */
  remove(name: string): void {
    this.lock(() => {
      const d = path.join(this.dir, name);
      if (!NAME.test(name) || !fs.existsSync(path.join(d, 'volume.json'))) throw new NotFoundError(`no such volume: ${name}`);
      fs.rmSync(path.join(d, 'volume.json'), { force: true });
      fs.rmSync(d, { recursive: true, force: true });
    });
  }

  /** Bytes used by a volume's data (what `system df` shows). */
  size(name: string): number {
    let total = 0;
    walkFiles(this.dataDir(name), (p, e) => {
      if (e.isFile()) total += fs.lstatSync(p).blocks * 512;
    });
    return total;
  }

  /** Directories left by a crash between a record's removal and its data's: removed. */
  sweep(): void {
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) if (NAME.test(n) && !fs.existsSync(path.join(this.dir, n, 'volume.json'))) fs.rmSync(path.join(this.dir, n), { recursive: true, force: true });
  }
}

/** The local driver's options: `type` with `device` and `o`, as Docker's `volume create -o`. */
function checkOptions(o: Record<string, string>): void {
  for (const k of Object.keys(o)) {
    if (!['type', 'device', 'o'].includes(k)) throw new UsageError(`volume option ${k}: the local driver takes type, device and o (e.g. -o type=tmpfs -o device=tmpfs -o o=size=100m)`);
  }
  if (o.type === undefined && o.device === undefined && o.o === undefined) return;
  if (!o.type) throw new UsageError('volume options need -o type=… (tmpfs, or none with -o o=bind for a bind)');
  if (o.type === 'tmpfs') return;
  if (!o.device) throw new UsageError(`volume option type=${o.type} needs -o device=…`);
  if (o.type === 'none' || (o.o ?? '').split(',').includes('bind')) {
    if (!path.isAbsolute(o.device)) throw new UsageError(`volume option device=${o.device}: a bind device must be an absolute host path`);
    return;
  }
  throw new UsageError(`volume option type=${o.type}: tsbuild's local driver supports type=tmpfs and bind (type=none, o=bind)`);
}

const PROPAGATION: Record<string, number> = {
  private: MS.PRIVATE, rprivate: MS.PRIVATE | MS.REC, slave: MS.SLAVE, rslave: MS.SLAVE | MS.REC, shared: MS.SHARED, rshared: MS.SHARED | MS.REC,
};

export function propagationFlags(p: string | undefined): number {
  if (p === undefined) return MS.PRIVATE | MS.REC;
  const f = PROPAGATION[p];
  if (f === undefined) throw new UsageError(`bind-propagation=${p}: use rprivate, private, rslave, slave, rshared or shared`);
  return f;
}

function tmpfsData(size?: number, mode?: number, extra: string[] = []): string {
  return [...(size !== undefined ? [`size=${size}`] : []), ...(mode !== undefined ? [`mode=${mode.toString(8)}`] : []), ...extra].join(',');
}

/** One mount-list entry → the spec's mount (volumes by their data directory or their driver options). */
export function specMount(m: MountConfig, volumes: Volumes): SpecMount {
  const ro = m.readonly ? MS.RDONLY : 0;
  if (m.type === 'tmpfs') {
    // Docker's tmpfs defaults: nosuid, nodev, noexec unless `exec` is asked for.
    const exec = (m.options ?? []).includes('exec');
    const extra = (m.options ?? []).filter((o) => o !== 'exec' && o !== 'noexec');
    return { destination: m.target, type: 'tmpfs', source: 'tmpfs', flags: MS.NOSUID | MS.NODEV | (exec ? 0 : MS.NOEXEC) | ro, data: tmpfsData(m.tmpfsSize, m.tmpfsMode, extra) };
  }
  if (m.type === 'bind') {
    const file = fs.statSync(m.source, { throwIfNoEntry: false })?.isDirectory() === false;
    return { destination: m.target, type: 'none', source: m.source, flags: MS.BIND | MS.REC | ro, data: '', file, propagation: propagationFlags(m.propagation) };
  }
  const v = volumes.get(m.source);
  if (!v) throw new NotFoundError(`volume ${m.source} is gone (removed while the container was stopped): create it again with tsbuild volume create ${m.source}`);
  if (v.Options.type === 'tmpfs') return { destination: m.target, type: 'tmpfs', source: v.Options.device ?? 'tmpfs', flags: MS.NOSUID | MS.NODEV | ro, data: v.Options.o ?? '' };
  if (v.Options.type) {
    return { destination: m.target, type: 'none', source: v.Options.device!, flags: MS.BIND | MS.REC | ro, data: '', propagation: MS.PRIVATE | MS.REC };
  }
  return { destination: m.target, type: 'none', source: volumes.dataDir(v.Name), flags: MS.BIND | MS.REC | ro, data: '', propagation: MS.PRIVATE | MS.REC, idmap: true };
}

/**
 * A slave bind sees later host mounts only if its source's mount is shared (or itself a slave), and a
 * shared one sends mounts back only if it is shared: Docker refuses otherwise, and so do we, rather than
 * run a container that silently never sees the mounts it was promised.
 */
export function checkPropagation(source: string, propagation: string | undefined, mountinfo = '/proc/self/mountinfo'): void {
  if (propagation === undefined || /private$/.test(propagation)) return;
  const real = fs.realpathSync(source);
  let best: { mp: string; opts: string[] } = { mp: '', opts: [] };
  for (const line of fs.readFileSync(mountinfo, 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 7) continue;
    const mp = f[4]!.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    const inside = mp === '/' || real === mp || real.startsWith(`${mp}/`);
    if (inside && mp.length >= best.mp.length) best = { mp, opts: f.slice(6, f.indexOf('-')) };
  }
  const shared = best.opts.some((o) => o.startsWith('shared:'));
  const slave = best.opts.some((o) => o.startsWith('master:'));
  if (/shared$/.test(propagation) && !shared) {
    throw new UsageError(`bind-propagation=${propagation}: ${source} is on mount ${best.mp}, which is not shared; make it shared (mount --make-rshared ${best.mp}) or use rslave or rprivate`);
  }
  if (/slave$/.test(propagation) && !shared && !slave) {
    throw new UsageError(`bind-propagation=${propagation}: ${source} is on mount ${best.mp}, which is neither shared nor a slave, so no later mount would reach the container; make it shared (mount --make-rshared ${best.mp}) or use rprivate`);
  }
}

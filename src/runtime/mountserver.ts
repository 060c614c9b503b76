/**
 * The host work of COPY, WORKDIR, RUN's layer commit and layer unpacking: mounts, unmounts and xattr
 * listings. Made by this process through the mounts addon (native/mounts.c) where it is built; else
 * by one long-lived helper (`tsbuild-sandbox serve`), whose start cost every build step and pull
 * 8-10 ms before its first mount (the spawn blocks Node until the helper has exec'd). A one-file COPY
 * once spawned the helper three times for xattrs alone. The helper takes requests one at a time;
 * it exits when our stdin closes or when we die (PDEATHSIG), and it does not keep Node's event loop
 * alive while idle. TSBUILD_MOUNT_ADDON=0 uses the helper.
 */
import { optionalAddon } from '../fsutil/index.js';
import { TsbuildError } from '../errors/index.js';
import { helperPath, parseLayerMeta, SandboxError, type HelperFailure, type LayerMeta } from './helper.js';
import { FUSE_OVERLAY, mountFuseOverlayAsync } from './fuse.js';
import type { SysMount } from './mounts.js';
import { spawnChild, type Child } from './spawn.js';

interface Answer {
  line: string;
  /** The bytes after the line, when the line announced a `size`. */
  body?: Buffer;
}

class MountServer {
  private child: Child | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private waiting: ((a: Answer | undefined) => void) | undefined;
  private pending: Buffer = Buffer.alloc(0);
  /** The answer whose announced bytes are still arriving. */
  private body: { line: string; size: number; parts: Buffer[]; have: number } | undefined;

  private start() {
    const child = spawnChild(helperPath(), ['serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout = child.stdout!;
    const stdin = child.stdin!;
    stdout.on('data', (d: Buffer) => {
      // Requests go one at a time, so an answer always answers the waiting one.
      const answer = (a: Answer) => {
        const w = this.waiting;
        this.waiting = undefined;
        w?.(a);
      };
      const b = this.body;
      if (b) {
        // A large listing comes in many chunks: kept as they come, joined once.
        b.parts.push(d);
        b.have += d.length;
        if (b.have < b.size) return;
        this.body = undefined;
        const all = Buffer.concat(b.parts);
        answer({ line: b.line, body: all.subarray(0, b.size) });
        return;
      }
      this.pending = this.pending.length ? Buffer.concat([this.pending, d]) : d;
      for (;;) {
        const nl = this.pending.indexOf(10);
        if (nl < 0) return;
        const line = this.pending.subarray(0, nl).toString('utf8');
        const m = /"size":(\d+)/.exec(line);
        const size = m ? Number(m[1]) : 0;
        const rest = this.pending.subarray(nl + 1);
        this.pending = Buffer.alloc(0);
        if (rest.length < size) {
          this.body = { line, size, parts: [rest], have: rest.length };
          return;
        }
        this.pending = rest.subarray(size);
        answer({ line, body: m ? rest.subarray(0, size) : undefined });
      }
    });
    const gone = () => {
      if (this.child === child) this.child = undefined;
      this.pending = Buffer.alloc(0);
      this.body = undefined;
      const w = this.waiting;
      this.waiting = undefined;
      w?.(undefined);
    };
    child.on('exit', gone);
    child.on('error', gone);
    stdin.on('error', () => undefined);
    this.idle(child);
    this.child = child;
    return child;
  }

  private idle(child: Child) {
    child.unref();
    (child.stdout as unknown as { unref(): void }).unref();
    (child.stderr as unknown as { unref(): void }).unref();
    (child.stdin as unknown as { unref(): void }).unref();
  }

  private busy(child: Child) {
    child.ref();
    (child.stdout as unknown as { ref(): void }).ref();
  }

  /** Fields are UTF-8 strings, or bytes as they are (paths named one byte per character). */
  request(fields: (string | Buffer)[]): Promise<Buffer | undefined> {
    const run = async () => {
      const child = this.child ?? this.start();
      this.busy(child);
      try {
        const a = await new Promise<Answer | undefined>((resolve) => {
          this.waiting = resolve;
          const parts = fields.flatMap((f) => [Buffer.from(':'), typeof f === 'string' ? Buffer.from(f) : f, Buffer.from([0])]);
          child.stdin!.write(Buffer.concat([...parts, Buffer.from([0])]));
        });
        if (a === undefined) throw new TsbuildError('SANDBOX', `the sandbox helper (serve) exited during ${String(fields[0])} ${String(fields[fields[0] === 'mount' ? 3 : 1])}`);
        const r = JSON.parse(a.line) as HelperFailure & { ok?: boolean };
        if (!r.ok) throw new SandboxError(r);
        return a.body;
      } finally {
        if (this.child) this.idle(this.child);
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }
}

let server: MountServer | undefined;
const serve = () => (server ??= new MountServer());

interface Addon {
  mount(type: string, source: string, target: string, flags: number, data: string, cwd?: string): Promise<void>;
  umount(target: string): Promise<void>;
  xattrs(dir: string, paths?: Buffer[]): Promise<Buffer>;
}
const mountsAddon = optionalAddon<Addon>('mounts', 'TSBUILD_MOUNT_ADDON');

/** How host mounts are made here, for `tsbuild info`. */
export function hostMountMethod(): string {
  const s = mountsAddon.status();
  return s.on ? 'in this process (native/build/tsbuild-mounts.node)' : `through the helper's serve process (${s.reason})`;
}

/** The addon's failure as the helper would have reported it: the same SandboxError. */
async function viaAddon<T>(op: string, path: string, call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (e) {
    const errno = (e as { errno?: unknown }).errno;
    if (typeof errno !== 'number') throw e;
    const message = (e as Error).message.replace(/^[^:]*: /, '');
    throw new SandboxError({ stage: 'host', op, path, errno, message });
  }
}

export async function hostMountAsync(m: SysMount, target: string): Promise<void> {
  if (m.type === FUSE_OVERLAY) return mountFuseOverlayAsync(m, target);
  const addon = mountsAddon.get();
  if (addon) return viaAddon('mount', target, addon.mount(m.type, m.source, target, m.flags, m.data, m.cwd || undefined));
  const fields = ['mount', m.type, m.source, target, String(m.flags), m.data];
  if (m.cwd) fields.push(m.cwd);
  await serve().request(fields);
}

export async function hostUnmountAsync(target: string): Promise<void> {
  const addon = mountsAddon.get();
  if (addon) return viaAddon('umount', target, addon.umount(target));
  await serve().request(['umount', target]);
}

/**
 * Every layer-worthy xattr under `dir` (or of just the relative `paths` given), with overlay's opaque
 * marks and fuse-overlayfs's copy-ups, by relative path; paths are latin1 strings, one character per
 * byte, as the layer differ names them. One call into the addon, or one request to the helper.
 */
export async function readLayerMetaAsync(dir: string, paths?: string[]): Promise<LayerMeta> {
  if (paths?.length === 0) return { xattrs: new Map(), opaque: new Set(), copiedUp: new Set() };
  const addon = mountsAddon.get();
  if (addon) return parseLayerMeta(await viaAddon('walk', dir, addon.xattrs(dir, paths?.map((p) => Buffer.from(p, 'latin1')))));
  const body = await serve().request(paths ? ['xattrs', dir, '-', ...paths.map((p) => Buffer.from(p, 'latin1'))] : ['xattrs', dir]);
  return parseLayerMeta(body ?? Buffer.alloc(0));
}

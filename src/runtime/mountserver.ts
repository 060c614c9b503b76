/**
 * One long-lived helper (`tsbuild-sandbox serve`) for the host work of COPY, WORKDIR, layer
 * unpacking and layer commits: mounts, unmounts and xattr listings. A spawn from a large Node process
 * forks it: 5 ms at 150 MB of RSS on a 2-core VM, 10-20 ms at more; a one-file COPY used to spawn
 * the helper three times for xattrs alone. Requests go one at a time; the helper exits when our stdin
 * closes or when we die (PDEATHSIG), and it does not keep Node's event loop alive while idle.
 */
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

export async function hostMountAsync(m: SysMount, target: string): Promise<void> {
  if (m.type === FUSE_OVERLAY) return mountFuseOverlayAsync(m, target);
  const fields = ['mount', m.type, m.source, target, String(m.flags), m.data];
  if (m.cwd) fields.push(m.cwd);
  await serve().request(fields);
}

export async function hostUnmountAsync(target: string): Promise<void> {
  await serve().request(['umount', target]);
}

/**
 * Every layer-worthy xattr under `dir` (or of just the relative `paths` given), with overlay's opaque
 * marks and fuse-overlayfs's copy-ups, by relative path; paths are latin1 strings, one character per
 * byte, as the layer differ names them. One request to the long-lived helper.
 */
export async function readLayerMetaAsync(dir: string, paths?: string[]): Promise<LayerMeta> {
  if (paths?.length === 0) return { xattrs: new Map(), opaque: new Set(), copiedUp: new Set() };
  const body = await serve().request(paths ? ['xattrs', dir, '-', ...paths.map((p) => Buffer.from(p, 'latin1'))] : ['xattrs', dir]);
  return parseLayerMeta(body ?? Buffer.alloc(0));
}

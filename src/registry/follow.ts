/**
 * Reading a blob while it downloads, so a pull unpacks a layer as its bytes arrive instead of after
 * the whole image is down (skopeo-speed pulls: the two used to run one after the other). The reader
 * follows the partial file the download writes; the download never waits for it. What is read is
 * not trusted by itself: the unpacker checks the layer's diffID, and the download checks the blob's
 * digest before the image gets a name.
 *
 * A retry that starts the blob over (a server that ignored the Range) rewrites the partial file:
 * a reader that already went past the new start fails with `FollowRestarted`, and its caller reads
 * the blob again from the store once it is complete.
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { TsbuildError } from '../errors/index.js';
import { ReadDrop } from '../fsutil/index.js';

export class FollowRestarted extends TsbuildError {
  constructor(digest: string) {
    super('FOLLOW_RESTARTED', `the download of ${digest} started over while it was being read`);
  }
}

interface BlobState {
  partial?: string;
  final?: string;
  written: number;
  /** Bumped when the download starts the file over; readers remember the one they began with. */
  generation: number;
  done: boolean;
  error?: Error;
  wake: (() => void)[];
}

export class BlobFollower {
  private blobs = new Map<string, BlobState>();

  private state(digest: string): BlobState {
    let s = this.blobs.get(digest);
    if (!s) this.blobs.set(digest, (s = { written: 0, generation: 0, done: false, wake: [] }));
    return s;
  }

  private notify(s: BlobState): void {
    for (const w of s.wake.splice(0)) w();
  }

  /** A download attempt opened `partial`, holding `have` verified bytes already. */
  begin(digest: string, partial: string, have: number): void {
    const s = this.state(digest);
    if (have < s.written) s.generation++;
    s.partial = partial;
    s.written = have;
    this.notify(s);
  }

  /** The partial file now holds `bytes` bytes. */
  progress(digest: string, bytes: number): void {
    const s = this.state(digest);
    s.written = bytes;
    this.notify(s);
  }

  /** The blob is complete and verified at `file` (or was in the store already). */
  done(digest: string, file: string, size: number): void {
    const s = this.state(digest);
    Object.assign(s, { final: file, written: size, done: true });
    this.notify(s);
  }

  /** The download gave up. */
  failed(digest: string, error: Error): void {
    const s = this.state(digest);
    s.error = error;
    this.notify(s);
  }

  /** Whether the blob is complete (readers of a restarted one wait for this, then read the store). */
  async complete(digest: string): Promise<void> {
    const s = this.state(digest);
    while (!s.done) {
      if (s.error) throw s.error;
      await new Promise<void>((r) => s.wake.push(r));
    }
  }

  /** The blob's bytes from its start, as they arrive. */
  open(digest: string): Readable {
    return Readable.from(this.follow(digest), { objectMode: false });
  }

  private async *follow(digest: string): AsyncGenerator<Buffer> {
    const s = this.state(digest);
    const generation = s.generation;
    let fh: fs.promises.FileHandle | undefined;
    // What was read goes from the page cache once written back: the blob stays on disk for a push,
    // and its pages serve the unpacked files instead (fsutil/pagecache.ts).
    let drop: ReadDrop | undefined;
    let pos = 0;
    try {
      for (;;) {
        if (s.error) throw s.error;
        if (s.generation !== generation) throw new FollowRestarted(digest);
        if (pos < s.written) {
          while (!fh) {
            try {
              fh = await openEither(s);
              drop = new ReadDrop(fh.fd);
            } catch (e) {
              // Renamed into the store a moment before `done` says where: wait for it.
              if (!(e instanceof TsbuildError && e.code === 'FOLLOW_LOST') || s.done) throw e;
              await new Promise<void>((r) => s.wake.push(r));
            }
          }
          const n = Math.min(s.written - pos, 1 << 20);
          const buf = Buffer.allocUnsafe(n);
          const { bytesRead } = await fh.read(buf, 0, n, pos);
          if (bytesRead === 0) throw new FollowRestarted(digest);
          pos += bytesRead;
          drop!.read(pos);
          yield buf.subarray(0, bytesRead);
          continue;
        }
        if (s.done) return;
        await new Promise<void>((r) => s.wake.push(r));
      }
    } finally {
      // Complete means synced: all of it is clean now.
      await (s.done ? drop?.end(pos) : drop?.settle());
      await fh?.close();
    }
  }
}

/** The partial file, or the blob it became (renamed into the store between the check and the open). */
async function openEither(s: BlobState): Promise<fs.promises.FileHandle> {
  for (const f of [s.done ? s.final : s.partial, s.final]) {
    if (!f) continue;
    try {
      return await fs.promises.open(f, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  throw new TsbuildError('FOLLOW_LOST', 'the blob being downloaded is neither in its partial file nor in the store');
}

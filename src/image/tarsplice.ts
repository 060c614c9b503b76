/**
 * Reusing the bytes of an earlier layer: where a new layer holds a file exactly as an earlier layer of
 * tsbuild's holds it (same header bytes, so same name, size, mode, owner, time and xattrs), its
 * content is read from that layer's blob, one read in a file already open, instead of opening the
 * file in its snapshot. A COPY written on its last full copy makes a layer that is mostly that copy's.
 */
import fs from 'node:fs';

/** Where an entry of the earlier layer is: its header blocks (extended ones included) and its content. */
interface Place {
  header: number;
  data: number;
  size: number;
}

const BLOCK = 512;
const pad = (n: number) => Math.ceil(n / BLOCK) * BLOCK;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
/** How much of the earlier layer one read brings in; a file larger than this is read on its own. */
const WINDOW = 1 << 20;

/**
 * Reads of the earlier layer at positions that go forward, as the new layer's entries do (both in
 * byte order of names), served from one window: a 20,000-file layer was two reads per entry (its
 * header, then its content) and one per header to index it, 60,000 system calls of about 7 us each
 * on the test VM; now about 40.
 */
class Window {
  private readonly buf = Buffer.allocUnsafe(WINDOW);
  private start = 0;
  private len = 0;
  constructor(private readonly fd: number) {}
  /** Up to `n` bytes at `pos` (fewer at the end of the file): a view, valid until the next call. */
  at(pos: number, n: number): Buffer {
    if (n > WINDOW) {
      const own = Buffer.allocUnsafe(n);
      return own.subarray(0, fs.readSync(this.fd, own, 0, n, pos));
    }
    if (pos < this.start || pos + n > this.start + this.len) {
      this.start = pos;
      this.len = 0;
      for (;;) {
        const got = fs.readSync(this.fd, this.buf, this.len, WINDOW - this.len, pos + this.len);
        if (got <= 0) break;
        this.len += got;
        if (this.len >= n) break;
      }
    }
    const from = pos - this.start;
    return this.buf.subarray(from, Math.min(from + n, this.len));
  }
}

function octal(b: Buffer): number | undefined {
  // Sizes above 8 GiB are base-256 (high bit set) or in a PAX record: not indexed, read from the file.
  if ((b[0]! & 0x80) !== 0) return undefined;
  const s = b.toString('latin1').replace(/[\0 ]+$/, '').trim();
  return /^[0-7]*$/.test(s) ? parseInt(s || '0', 8) : undefined;
}

/** The `path` record of a PAX extended header, as bytes (latin1), or undefined. */
function paxPath(body: Buffer): string | undefined {
  for (let pos = 0; pos < body.length; ) {
    const sp = body.indexOf(0x20, pos);
    if (sp < 0) return undefined;
    const len = parseInt(body.subarray(pos, sp).toString('latin1'), 10);
    if (!(len > 0)) return undefined;
    const rec = body.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq > 0 && rec.subarray(0, eq).toString('latin1') === 'path') return rec.subarray(eq + 1).toString('latin1');
    pos += len;
  }
  return undefined;
}

/**
 * An earlier layer (an uncompressed tar file) opened for splicing: its regular files by path (latin1,
 * no trailing slash), or undefined when it is not a tar this reader knows (then nothing is spliced).
 */
export class LayerSplice {
  private readonly window: Window;
  private constructor(
    private readonly fd: number,
    private readonly index: Map<string, Place>,
  ) {
    this.window = new Window(fd);
  }

  static open(file: string): LayerSplice | undefined {
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return undefined;
    }
    const index = new Map<string, Place>();
    const size = fs.fstatSync(fd).size;
    const window = new Window(fd);
    let start: number | undefined;
    let longName: string | undefined;
    try {
      for (let pos = 0; pos + BLOCK <= size; ) {
        const h = window.at(pos, BLOCK);
        if (h.length !== BLOCK) break;
        if (h.equals(ZERO_BLOCK)) break;
        const flag = String.fromCharCode(h[156]!);
        const n = octal(h.subarray(124, 136));
        if (n === undefined) throw new Error('unsupported size field');
        const here = start ?? pos;
        if (flag === 'x' || flag === 'L') {
          const body = window.at(pos + BLOCK, n);
          if (body.length !== n) break;
          const name = flag === 'x' ? paxPath(body) : body.toString('latin1').replace(/\0+$/, '');
          if (name !== undefined) longName = name;
          start = here;
        } else {
          if (flag === '0' || flag === '\0') {
            const name = (longName ?? h.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '')).replace(/\/+$/, '');
            index.set(name, { header: here, data: pos + BLOCK, size: n });
          }
          start = undefined;
          longName = undefined;
        }
        pos += BLOCK + pad(n);
      }
    } catch {
      fs.closeSync(fd);
      return undefined;
    }
    return new LayerSplice(fd, index);
  }

  /**
   * The content of `rel` when the earlier layer has the entry with exactly these header bytes, read
   * in chunks; undefined otherwise (the caller reads the file).
   */
  content(rel: string, header: Buffer): AsyncGenerator<Buffer> | undefined {
    const p = this.index.get(rel);
    if (!p || p.data - p.header !== header.length) return undefined;
    if (!this.window.at(p.header, header.length).equals(header)) return undefined;
    return this.read(p);
  }

  private async *read(p: Place): AsyncGenerator<Buffer> {
    if (p.size <= WINDOW) {
      const got = this.window.at(p.data, p.size);
      if (got.length !== p.size) throw new Error(`the earlier layer ended inside ${p.data + got.length}: it changed while this layer was being written`);
      // A copy: the consumer may still hold these bytes when the window moves on.
      if (p.size > 0) yield Buffer.from(got);
      return;
    }
    for (let off = 0; off < p.size; ) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, p.size - off));
      const n = fs.readSync(this.fd, chunk, 0, chunk.length, p.data + off);
      if (n <= 0) throw new Error(`the earlier layer ended inside ${p.data + off}: it changed while this layer was being written`);
      yield n === chunk.length ? chunk : chunk.subarray(0, n);
      off += n;
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

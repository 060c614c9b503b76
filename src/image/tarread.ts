/**
 * A streaming tar reader (ustar, PAX with binary-safe values, GNU long names, base-256 numbers), so
 * layers are read with everything they carry: node-tar drops `SCHILY.xattr.*` records and cuts PAX
 * values at the first NUL, which loses `security.capability`. Entries are yielded one at a time; the
 * caller consumes (or skips) `body` before asking for the next, and memory stays at one chunk.
 */
import type { Readable } from 'node:stream';
import { TsbuildError } from '../errors/index.js';
import { padLength } from './tar.js';

export type ReadType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'other';

export interface ReadHeader {
  name: string;
  type: ReadType;
  /** The raw typeflag, for messages about unsupported entries. */
  flag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Record<string, Buffer>;
}

export interface TarEntry {
  header: ReadHeader;
  body: AsyncIterable<Buffer>;
  /**
   * The whole body, when the reader held all of it already (small files: most entries of a layer), so
   * that it can be written without an asynchronous step per piece; `body` then yields the same bytes.
   * Use one or the other.
   */
  data?: Buffer;
}

/** An archive that cannot be (safely) read or extracted. */
export class ArchiveError extends TsbuildError {
  constructor(message: string) {
    super('ARCHIVE_INVALID', message);
  }
}

/** Bytes from an untrusted file, safe to print: control and non-ASCII bytes escaped, length capped. */
export function printable(s: string, max = 32): string {
  const t = s.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

export class TarFormatError extends ArchiveError {
  constructor(message: string) {
    super(`invalid tar archive: ${message}`);
  }
}

/** Extended headers above this are hostile, not real (they are held in memory to parse). */
const MAX_META = 1 << 20;

const TYPES: Record<string, ReadType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };

/** Zero bytes (an empty body, a read at the end): shared, as nothing can be written into it. */
const NOTHING = Buffer.alloc(0);

/** Pulls exact byte counts out of a chunked stream. */
class ByteReader {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already taken: a view per take, not another for the rest of the chunk. */
  private off = 0;
  /** Bytes at hand, not yet taken. */
  private have = 0;
  private done = false;
  private it: AsyncIterator<Buffer>;
  constructor(input: AsyncIterable<Buffer | Uint8Array>) {
    this.it = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }
  private async fill(n: number): Promise<void> {
    while (this.have < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length) {
        const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
        this.chunks.push(b);
        this.have += b.length;
      }
    }
  }
  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const take = Math.min(n, this.have);
    const out = this.take(take);
    return out;
  }
  /** Exactly n bytes if they are at hand already, without waiting; else undefined (nothing taken). */
  tryTake(n: number): Buffer | undefined {
    return this.have >= n ? this.take(n) : undefined;
  }
  /** Up to n bytes, whatever is at hand (one chunk at most): for streaming bodies. */
  async some(n: number): Promise<Buffer> {
    if (this.have === 0) await this.fill(1);
    if (this.have === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    return this.take(Math.min(n, first.length - this.off));
  }
  private take(n: number): Buffer {
    if (n === 0) return NOTHING;
    const first = this.chunks[0]!;
    if (first.length - this.off >= n) {
      const out = first.subarray(this.off, this.off + n);
      this.off += n;
      this.have -= n;
      if (this.off === first.length) {
        this.chunks.shift();
        this.off = 0;
      }
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.off, n - at);
      c.copy(out, at, this.off, this.off + k);
      at += k;
      this.off += k;
      if (this.off === c.length) {
        this.chunks.shift();
        this.off = 0;
      }
    }
    this.have -= n;
    return out;
  }
  async drain(): Promise<void> {
    while (!(await this.it.next()).done) {
      // trailing data after the end-of-archive blocks (padding to a record size) is ignored
    }
  }
}

async function* onePiece(b: Buffer): AsyncGenerator<Buffer> {
  if (b.length > 0) yield b;
}

/** An entry whose body the reader holds whole; `body` is made only for a caller that asks for it. */
class Buffered implements TarEntry {
  constructor(
    readonly header: ReadHeader,
    readonly data: Buffer,
  ) {}
  get body(): AsyncIterable<Buffer> {
    return onePiece(this.data);
  }
}

function cstr(b: Buffer, off: number, len: number, enc: BufferEncoding = 'utf8'): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return b.toString(enc, off, end);
}

export function num(b: Buffer, off: number, len: number, what: string): number {
  if (b[off]! & 0x80) {
    const f = b.subarray(off, off + len);
    // base-256 (GNU): big-endian two's complement in the remaining bits
    if (f[0] === 0xff) throw new TarFormatError(`negative ${what}`);
    let v = BigInt(f[0]! & 0x7f);
    for (let i = 1; i < f.length; i++) v = (v << 8n) | BigInt(f[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new TarFormatError(`${what} out of range`);
    return Number(v);
  }
  // The usual field (spaces, octal digits, spaces, then NULs or the end) read from its bytes; any
  // other goes the way below, which also words the error. Eight fields a header: the string way
  // cost a layer of 20,000 small files 3-4 µs an entry.
  let v = 0;
  let state = 0; // 0: leading spaces, 1: digits, 2: trailing spaces
  let usual = true;
  for (let i = off; i < off + len; i++) {
    const c = b[i]!;
    if (c === 0) break;
    if (c >= 0x30 && c <= 0x37 && state < 2) {
      v = v * 8 + (c - 0x30);
      state = 1;
    } else if (c === 0x20) {
      if (state === 1) state = 2;
    } else {
      usual = false;
      break;
    }
  }
  if (usual) return v;
  const s = b.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad ${what} field "${printable(s)}"`);
  return parseInt(s, 8);
}

function checksumOK(b: Buffer): boolean {
  const stored = num(b, 148, 8, 'checksum');
  // The field itself counts as eight spaces.
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += b[i]!;
  for (let i = 156; i < 512; i++) sum += b[i]!;
  if (stored === sum) return true;
  // Some old tars summed signed bytes.
  let signed = 8 * 32;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) signed += b[i]! > 127 ? b[i]! - 256 : b[i]!;
  return stored === signed;
}

interface Pax {
  [key: string]: Buffer;
}

/** No extended header records: compared by identity, never written to. */
const NO_PAX: Pax = Object.freeze({}) as Pax;

function parsePax(body: Buffer): Pax {
  const out: Pax = {};
  let pos = 0;
  while (pos < body.length) {
    const sp = body.indexOf(0x20, pos);
    if (sp < 0) break;
    const len = parseInt(body.subarray(pos, sp).toString('latin1'), 10);
    if (!Number.isInteger(len) || len <= sp - pos || pos + len > body.length) throw new TarFormatError('malformed PAX record');
    const rec = body.subarray(sp + 1, pos + len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw new TarFormatError('PAX record without "="');
    out[rec.subarray(0, eq).toString('utf8')] = Buffer.from(rec.subarray(eq + 1));
    pos += len;
  }
  return out;
}

/**
 * `names: 'bytes'` gives names and link targets as latin1 strings, one character per byte, so a name
 * that is not UTF-8 reaches the filesystem unchanged (through Buffer paths); the default is UTF-8 text.
 */
export async function* readTar(input: AsyncIterable<Buffer | Uint8Array> | Readable, o: { names?: 'utf8' | 'bytes' } = {}): AsyncGenerator<TarEntry> {
  const enc: BufferEncoding = o.names === 'bytes' ? 'latin1' : 'utf8';
  const r = new ByteReader(input as AsyncIterable<Buffer>);
  let globalPax: Pax = NO_PAX;
  let pax: Pax = NO_PAX;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    // Read without a wait when the bytes are at hand: a wait per header, body and padding was most of
    // the reader's cost per entry in a layer of small files.
    const block = r.tryTake(512) ?? (await r.read(512));
    if (block.length === 0) return; // no end-of-archive marker: tolerated, as GNU tar does
    if (block.length < 512) throw new TarFormatError('unexpected end of data inside a header');
    if (block.every((x) => x === 0)) {
      await r.drain();
      return;
    }
    if (!checksumOK(block)) throw new TarFormatError('header checksum mismatch (not a tar archive, or corrupted)');
    const flag = String.fromCharCode(block[156]!);
    const size = num(block, 124, 12, 'size');
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw new TarFormatError(`an extended header of ${size} bytes: refusing absurd sizes`);
      const body = await r.read(size);
      if (body.length < size) throw new TarFormatError('unexpected end of data inside an extended header');
      await r.read(padLength(size));
      if (flag === 'x') pax = { ...pax, ...parsePax(body) };
      else if (flag === 'g') globalPax = { ...globalPax, ...parsePax(body) };
      else if (flag === 'L') longName = cstr(body, 0, body.length, enc);
      else longLink = cstr(body, 0, body.length, enc);
      continue;
    }
    const ustar = block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 && block[260] === 0x61 && block[261] === 0x72;
    const prefix = ustar ? cstr(block, 345, 155, enc) : '';
    let name = longName ?? (prefix ? `${prefix}/${cstr(block, 0, 100, enc)}` : cstr(block, 0, 100, enc));
    let linkname = longLink ?? cstr(block, 157, 100, enc);
    const h: ReadHeader = {
      name,
      type: TYPES[flag] ?? 'other',
      flag,
      mode: num(block, 100, 8, 'mode'),
      uid: num(block, 108, 8, 'uid'),
      gid: num(block, 116, 8, 'gid'),
      size,
      mtime: num(block, 136, 12, 'mtime'),
      linkname,
      devmajor: ustar ? num(block, 329, 8, 'devmajor') : 0,
      devminor: ustar ? num(block, 337, 8, 'devminor') : 0,
      xattrs: {},
    };
    // Most entries have no extended header: no merged copy to make and walk.
    const all = globalPax === NO_PAX ? pax : pax === NO_PAX ? globalPax : { ...globalPax, ...pax };
    for (const [k, v] of all === NO_PAX ? [] : Object.entries(all)) {
      const s = () => v.toString('utf8');
      if (k === 'path') name = h.name = v.toString(enc);
      else if (k === 'linkpath') linkname = h.linkname = v.toString(enc);
      else if (k === 'size') h.size = Number(s());
      else if (k === 'uid') h.uid = Number(s());
      else if (k === 'gid') h.gid = Number(s());
      else if (k === 'mtime') h.mtime = Math.floor(Number(s()));
      else if (k.startsWith('SCHILY.xattr.')) h.xattrs[k.slice('SCHILY.xattr.'.length)] = v;
    }
    if (!Number.isSafeInteger(h.size) || h.size < 0) throw new TarFormatError(`entry "${h.name}" has an invalid size`);
    pax = NO_PAX;
    longName = undefined;
    longLink = undefined;
    // Only regular files (and unknown types) carry data; a size on a link or directory is ignored.
    const dataSize = h.type === 'file' || h.type === 'other' ? h.size : 0;
    const data = r.tryTake(dataSize);
    if (data) {
      yield new Buffered(h, data);
    } else {
      let left = dataSize;
      const next = async (): Promise<Buffer> => {
        const c = await r.some(Math.min(left, 1 << 20));
        if (c.length === 0) throw new TarFormatError(`entry "${h.name}" is truncated`);
        left -= c.length;
        return c;
      };
      const body = (async function* () {
        while (left > 0) yield await next();
      })();
      yield { header: h, body };
      // Whatever the caller did not read (or abandoned half way) is skipped here.
      while (left > 0) await next();
    }
    const pad = padLength(dataSize);
    if (pad) {
      const p = r.tryTake(pad) ?? (await r.read(pad));
      if (p.length < pad) throw new TarFormatError(`entry "${h.name}" is truncated`);
    }
  }
}

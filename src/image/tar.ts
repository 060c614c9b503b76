/**
 * A minimal streaming tar writer (POSIX ustar with PAX extended headers for long names, large sizes and
 * ids), so layers are produced as streams with exactly the entries, order and metadata we choose.
 */
export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarHeader {
  /** A string is written as UTF-8; a Buffer as its bytes (a file name that is not UTF-8, from disk). */
  name: string | Buffer;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string | Buffer;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
  /** Extended attributes, written as PAX `SCHILY.xattr.<name>` records (binary-safe), as Docker does. */
  xattrs?: Record<string, Buffer>;
}

const TYPEFLAG: Record<EntryType, string> = { file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' };

function octal(buf: Buffer, off: number, len: number, value: number): boolean {
  const s = Math.floor(value).toString(8);
  if (s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0') + '\0', off, len, 'ascii');
  return true;
}

function paxRecord(key: string, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function isAscii(b: Buffer): boolean {
  return b.every((c) => c < 0x80);
}

const bytes = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s) : s);

/** The first 100 bytes of a name PAX carries in full, made ASCII for readers that show the field. */
const asciiPrefix = (b: Buffer): Buffer => Buffer.from(b.subarray(0, 100).toString('latin1').replace(/[^\x00-\x7f]/g, '_'), 'latin1');

/** `PaxHeaders/` and the name's last 80 characters (bytes, for a name that is not UTF-8), printable. */
function paxHeaderName(name: Buffer): Buffer {
  const text = name.toString('utf8');
  const tail = Buffer.from(text).equals(name) ? text.slice(-80) : name.subarray(-80).toString('latin1');
  return Buffer.from('PaxHeaders/' + tail.replace(/[^\x20-\x7e]/g, '_'));
}

function rawHeader(h: TarHeader, name: Buffer, linkname: Buffer, size: number, typeflag: string): Buffer {
  const b = Buffer.alloc(512);
  name.copy(b, 0, 0, Math.min(100, name.length));
  octal(b, 100, 8, h.mode & 0o7777);
  octal(b, 108, 8, h.uid);
  octal(b, 116, 8, h.gid);
  octal(b, 124, 12, size);
  octal(b, 136, 12, h.mtime);
  b.write(typeflag, 156, 1, 'ascii');
  linkname.copy(b, 157, 0, Math.min(100, linkname.length));
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  octal(b, 329, 8, h.devmajor ?? 0);
  octal(b, 337, 8, h.devminor ?? 0);
  b.fill(' ', 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return b;
}

/** Encodes one entry's header block(s); content and padding follow from the caller. */
export function encodeHeader(h: TarHeader): Buffer {
  const pax: Record<string, string | Buffer> = { ...(h.pax ?? {}) };
  for (const [k, v] of Object.entries(h.xattrs ?? {})) pax[`SCHILY.xattr.${k}`] = v;
  let name = bytes(h.name);
  if (h.type === 'dir' && name[name.length - 1] !== 0x2f) name = Buffer.concat([name, Buffer.from('/')]);
  const linkname = bytes(h.linkname ?? '');
  if (name.length > 100 || !isAscii(name)) pax['path'] = name;
  if (linkname.length > 100 || !isAscii(linkname)) pax['linkpath'] = linkname;
  if (h.size > 0o77777777777) pax['size'] = String(h.size);
  if (h.uid > 0o7777777) pax['uid'] = String(h.uid);
  if (h.gid > 0o7777777) pax['gid'] = String(h.gid);
  const main = rawHeader(
    { ...h, uid: pax['uid'] ? 0 : h.uid, gid: pax['gid'] ? 0 : h.gid },
    pax['path'] !== undefined ? asciiPrefix(name) : name,
    // Strict readers (node-tar) want a non-empty link field even when PAX carries the real one.
    pax['linkpath'] !== undefined ? asciiPrefix(linkname) : linkname,
    pax['size'] ? 0 : h.size,
    TYPEFLAG[h.type],
  );
  const keys = Object.keys(pax).sort();
  if (keys.length === 0) return main;
  const body = Buffer.concat(keys.map((k) => paxRecord(k, pax[k]!)));
  const ph = rawHeader({ ...h, uid: 0, gid: 0, mode: 0o644 }, paxHeaderName(name), Buffer.alloc(0), body.length, 'x');
  return Buffer.concat([ph, body, padding(body.length), main]);
}

/** Bytes of zeros after an entry's `size` bytes of data, up to the next 512-byte block. */
export function padLength(size: number): number {
  return (512 - (size % 512)) % 512;
}

export function padding(size: number): Buffer {
  return Buffer.alloc(padLength(size));
}

/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);

/**
 * Container logs in Docker's json-file format: one JSON object per line, `{"log","stream","time"}`,
 * stdout and stderr kept apart. The file rotates at `maxSize` bytes into `ctr.log.1` … `.N-1`
 * (`maxFile` files in all), so a chatty container cannot fill the disk. Reading streams the files
 * oldest first, keeps only the last N lines for `--tail`, and follows the live file across rotations.
 */
import fs from 'node:fs';
import readline from 'node:readline';

export type LogStream = 'stdout' | 'stderr';
export interface LogEntry {
  log: string;
  stream: LogStream;
  time: string;
}
export interface LogOptions {
  /** Bytes per file; 0 or less: no limit. */
  maxSize: number;
  /** Files kept, the live one included (≥ 1). */
  maxFile: number;
}

/** tsbuild's default cap: 10 MiB × 3 files (Docker's json-file has none; a full disk is worse). */
export const DEFAULT_LOG_OPTIONS: LogOptions = { maxSize: 10 << 20, maxFile: 3 };

/** A line longer than this is written as partial entries, as Docker does at 16 KiB. */
const MAX_LINE = 16 * 1024;

export class LogWriter {
  private fd: number;
  private size: number;
  private partial: Record<LogStream, Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  constructor(private file: string, private o: LogOptions = DEFAULT_LOG_OPTIONS) {
    this.fd = fs.openSync(file, 'a', 0o640);
    this.size = fs.fstatSync(this.fd).size;
  }
  write(stream: LogStream, chunk: Buffer): void {
    let buf = Buffer.concat([this.partial[stream], chunk]);
    let nl: number;
    while ((nl = buf.indexOf(10)) >= 0 || buf.length >= MAX_LINE) {
      const end = nl >= 0 && nl < MAX_LINE ? nl + 1 : MAX_LINE;
      this.entry(stream, buf.subarray(0, end));
      buf = buf.subarray(end);
    }
    this.partial[stream] = buf;
  }
  /** Writes what is left of unfinished lines (the process ended without a newline). */
  flush(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.partial[s].length) this.entry(s, this.partial[s]);
      this.partial[s] = Buffer.alloc(0);
    }
  }
  close(): void {
    this.flush();
    fs.closeSync(this.fd);
  }
  private entry(stream: LogStream, line: Buffer): void {
    const data = Buffer.from(JSON.stringify({ log: line.toString('utf8'), stream, time: new Date().toISOString() }) + '\n');
    if (this.o.maxSize > 0 && this.size > 0 && this.size + data.length > this.o.maxSize) this.rotate();
    fs.writeSync(this.fd, data);
    this.size += data.length;
  }
  private rotate(): void {
    fs.closeSync(this.fd);
    if (this.o.maxFile > 1) {
      fs.rmSync(`${this.file}.${this.o.maxFile - 1}`, { force: true });
      for (let i = this.o.maxFile - 2; i >= 1; i--) if (fs.existsSync(`${this.file}.${i}`)) fs.renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
      fs.renameSync(this.file, `${this.file}.1`);
    }
    this.fd = fs.openSync(this.file, 'w', 0o640);
    this.size = 0;
  }
}

function parse(line: string): LogEntry | undefined {
  try {
    const e = JSON.parse(line) as LogEntry;
    return typeof e.log === 'string' && (e.stream === 'stdout' || e.stream === 'stderr') ? e : undefined;
  } catch {
    // a line cut by a crash mid-write
    return undefined;
  }
}

/** The rotated files, oldest first, then the live one. */
function files(file: string): string[] {
  const out: string[] = [];
  for (let i = 1; fs.existsSync(`${file}.${i}`); i++) out.unshift(`${file}.${i}`);
  return [...out, file];
}

export interface ReadLogOptions {
  /** Only the last N entries (of what `since` lets through). */
  tail?: number;
  /** Only entries at or after this time (ms since the epoch). */
  since?: number;
  /** Only entries before this time. */
  until?: number;
  /** Keep reading new entries until `done()` says the writer has finished for good. */
  follow?: { done: () => boolean; signal?: AbortSignal; pollMs?: number };
}

export async function* readLogs(file: string, o: ReadLogOptions = {}): AsyncGenerator<LogEntry> {
  const keep = (e: LogEntry | undefined): e is LogEntry => {
    if (!e) return false;
    const t = Date.parse(e.time);
    return (o.since === undefined || t >= o.since) && (o.until === undefined || t < o.until);
  };
  const ring: LogEntry[] = [];
  let pos = 0;
  let ino: number | undefined;
  for (const f of files(file)) {
    let stream: fs.ReadStream;
    try {
      const st = fs.statSync(f);
      if (f === file) {
        ino = st.ino;
        pos = st.size;
      }
      stream = fs.createReadStream(f, { end: f === file ? Math.max(0, st.size - 1) : undefined });
      if (f === file && st.size === 0) continue;
    } catch {
      continue;
    }
    for await (const line of readline.createInterface({ input: stream, crlfDelay: Infinity })) {
      const e = parse(line);
      if (!keep(e)) continue;
      if (o.tail === undefined) yield e;
      else {
        ring.push(e);
        if (ring.length > o.tail) ring.shift();
      }
    }
  }
  yield* ring;
  if (!o.follow) return;
  // Follow: poll the live file; when it was rotated (a new inode), finish the old one first.
  const f = o.follow;
  let rest = '';
  const readFrom = (name: string, from: number): { text: string; end: number } => {
    const fd = fs.openSync(name, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      if (size <= from) return { text: '', end: from };
      const buf = Buffer.alloc(size - from);
      const n = fs.readSync(fd, buf, 0, buf.length, from);
      return { text: buf.subarray(0, n).toString('utf8'), end: from + n };
    } finally {
      fs.closeSync(fd);
    }
  };
  for (;;) {
    const finished = f.done();
    let text = '';
    try {
      const st = fs.statSync(file);
      if (ino !== undefined && st.ino !== ino && fs.existsSync(`${file}.1`)) {
        text += readFrom(`${file}.1`, pos).text;
        pos = 0;
      }
      ino = st.ino;
      const r = readFrom(file, pos);
      text += r.text;
      pos = r.end;
    } catch {
      // not there (yet, or removed with the container)
    }
    const lines = (rest + text).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const e = parse(line);
      if (keep(e)) yield e;
    }
    if (finished || f.signal?.aborted) return;
    await new Promise((r) => setTimeout(r, f.pollMs ?? 100));
  }
}

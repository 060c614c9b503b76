/**
 * Writes behind a stream: pieces are gathered into batches of at least `batch` bytes, and each batch
 * is written while the next one fills, one write in flight. For large bodies that arrive in small
 * pieces (gunzip's output, network reads): a blocking write per piece stalls whatever produces the
 * next one; an awaited write per piece leaves the disk idle while it is produced.
 *
 * A batch goes out as the pieces themselves (one writev), never joined into one buffer first: the
 * join copied every byte once more and allocated a fresh 1 MiB buffer per batch, which the kernel
 * then had to fault in (a 512 MiB pull did both for the blob and again for the unpacked file).
 * Pieces must not be changed after they are pushed: network reads and gunzip's output never are.
 */
const IOV_MAX = 1024;

/** `parts` without their first `n` bytes. */
function advance(parts: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < parts.length && n >= parts[i]!.length) n -= parts[i++]!.length;
  const rest = parts.slice(i);
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

export class WriteBehind {
  private parts: Buffer[] = [];
  private pending = 0;
  private inFlight: Promise<void> | undefined;
  private pos: number;

  /**
   * `write` writes the pieces in order at a position (a writev, at most 1024 of them) and says how
   * many bytes it wrote; `onWritten(upTo)` hears of each batch once it is on its way to the disk (for
   * a reader following the file).
   */
  constructor(
    private readonly write: (parts: Buffer[], position: number) => Promise<number>,
    private readonly o: { start?: number; batch?: number; onWritten?: (upTo: number) => void } = {},
  ) {
    this.pos = o.start ?? 0;
  }

  async push(b: Buffer): Promise<void> {
    this.parts.push(b);
    this.pending += b.length;
    if (this.pending >= (this.o.batch ?? 1 << 20)) await this.flush();
  }

  /** Everything written; the position after the last byte. */
  async end(): Promise<number> {
    if (this.pending > 0) await this.flush();
    await this.inFlight;
    return this.pos;
  }

  /**
   * After the producer failed: waits for the write in flight (the caller closes the descriptor
   * next, never under it), and with `keep` also writes what was pushed and not yet written, when
   * everything before it was written (no hole before it). Never throws.
   */
  async abandon(keep = false): Promise<void> {
    const ok = await (this.inFlight ?? Promise.resolve()).then(() => true, () => false);
    if (!keep || !ok || this.pending === 0) return;
    await this.writeAll(this.take(), this.pos).catch(() => undefined);
  }

  private take(): { parts: Buffer[]; length: number } {
    const t = { parts: this.parts, length: this.pending };
    this.parts = [];
    this.pending = 0;
    return t;
  }

  private async writeAll(batch: { parts: Buffer[]; length: number }, at: number): Promise<void> {
    let rest = batch.parts.filter((p) => p.length > 0);
    for (let off = 0; off < batch.length; ) {
      const n = await this.write(rest.length > IOV_MAX ? rest.slice(0, IOV_MAX) : rest, at + off);
      if (n <= 0) throw new Error(`a write at ${at + off} wrote nothing`);
      off += n;
      rest = advance(rest, n);
    }
  }

  private async flush(): Promise<void> {
    const batch = this.take();
    await this.inFlight;
    const at = this.pos;
    this.pos += batch.length;
    this.inFlight = (async () => {
      await this.writeAll(batch, at);
      this.o.onWritten?.(at + batch.length);
    })();
    // Seen when awaited (the next flush, end or abandon); until then not an unhandled rejection.
    this.inFlight.catch(() => undefined);
  }
}

/**
 * Writes behind a stream: pieces are gathered into batches of at least `batch` bytes, and each batch
 * is written while the next one fills, one write in flight. For large bodies that arrive in small
 * pieces (gunzip's output, network reads): a blocking write per piece stalls whatever produces the
 * next one; an awaited write per piece leaves the disk idle while it is produced.
 */
export class WriteBehind {
  private parts: Buffer[] = [];
  private pending = 0;
  private inFlight: Promise<void> | undefined;
  private pos: number;

  /**
   * `write` writes at a position and says how many bytes it wrote; `onWritten(upTo)` hears of each
   * batch once it is on its way to the disk (for a reader following the file).
   */
  constructor(
    private readonly write: (b: Buffer, position: number) => Promise<number>,
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
    const data = this.take();
    for (let off = 0; off < data.length; ) off += await this.write(data.subarray(off), this.pos + off).catch(() => data.length);
  }

  private take(): Buffer {
    const data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.pending);
    this.parts = [];
    this.pending = 0;
    return data;
  }

  private async flush(): Promise<void> {
    const data = this.take();
    await this.inFlight;
    const at = this.pos;
    this.pos += data.length;
    this.inFlight = (async () => {
      for (let off = 0; off < data.length; ) off += await this.write(data.subarray(off), at + off);
      this.o.onWritten?.(at + data.length);
    })();
    // Seen when awaited (the next flush, end or abandon); until then not an unhandled rejection.
    this.inFlight.catch(() => undefined);
  }
}

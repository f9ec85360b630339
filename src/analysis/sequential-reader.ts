/** A byte source that can fill a caller's buffer (FileByteSource does). */
export interface FillableSource {
  readonly size: number;
  readInto(target: Uint8Array, offset: number): Promise<Uint8Array>;
}

export const canFill = (source: unknown): source is FillableSource =>
  typeof (source as Partial<FillableSource>).readInto === "function";

/** Bytes per window: large sequential reads like `cat`, one always in flight ahead. */
export const WINDOW_BYTES = 16 << 20;

interface Window {
  readonly start: number;
  readonly end: number;
  readonly bytes: Uint8Array;
}

/**
 * Serves many small ordered reads of one file (tensor after tensor, chunk after chunk) from large
 * sequential windows, with the next window already being read. Many small positional reads
 * issued out of order defeat the kernel's read-ahead on a cold disk (measured: 2–5× slower than
 * reading the file once); this restores the plain sequential pattern. Requests are served one at
 * a time, in the order made; reads outside the forward stream go straight to the file.
 */
export class SequentialReader {
  private current: Window | null = null;
  private next: Promise<Window> | null = null;
  private spare: Uint8Array | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly source: FillableSource,
    private readonly windowBytes = WINDOW_BYTES,
  ) {}

  /** Fills `target` with the bytes at `offset`; the copy is the caller's to keep. */
  readInto(target: Uint8Array, offset: number): Promise<Uint8Array> {
    const run = this.queue.then(() => this.copy(target, offset));
    this.queue = run.catch(() => {});
    return run;
  }

  /** Waits for the read in flight, so the file can be closed. */
  async drain(): Promise<void> {
    await this.queue;
    await this.next?.catch(() => {});
  }

  private async copy(target: Uint8Array, offset: number): Promise<Uint8Array> {
    if (target.byteLength >= this.windowBytes) return this.source.readInto(target, offset);
    let done = 0;
    while (done < target.byteLength) {
      const at = offset + done;
      const window = await this.windowAt(at);
      const count = Math.min(target.byteLength - done, window.end - at);
      target.set(window.bytes.subarray(at - window.start, at - window.start + count), done);
      done += count;
    }
    return target;
  }

  private async windowAt(at: number): Promise<Window> {
    const current = this.current;
    if (current && at >= current.start && at < current.end) return current;
    if (this.next) {
      const next = await this.next;
      this.next = null;
      if (at >= next.start && at < next.end) {
        if (current) this.spare = current.bytes;
        this.current = next;
        this.prefetch(next.end);
        return next;
      }
      this.spare = next.bytes;
    }
    // a jump (first read, or a file whose tensors come in another order): start a new stream here
    const bytes = current?.bytes ?? new Uint8Array(this.windowBytes);
    this.current = null;
    const window = await this.fill(bytes, at);
    this.current = window;
    this.prefetch(window.end);
    return window;
  }

  private prefetch(start: number): void {
    if (start >= this.source.size) return;
    const bytes = this.spare ?? new Uint8Array(this.windowBytes);
    this.spare = null;
    this.next = this.fill(bytes, start);
    this.next.catch(() => {}); // surfaced when awaited
  }

  private async fill(bytes: Uint8Array, start: number): Promise<Window> {
    const end = Math.min(this.source.size, start + bytes.byteLength);
    await this.source.readInto(bytes.subarray(0, end - start), start);
    return { start, end, bytes };
  }
}

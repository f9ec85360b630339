/**
 * Memory for buffers given back in about the order they were taken: a writer's read-ahead takes a
 * range's reads, writes the range, gives them back, and so on down the model. Buffers are carved one
 * after another from a single block, wrapping round to its start; a buffer given back early is
 * reclaimed once every older one is back. What the read-ahead holds is then bounded by this one
 * block, where free lists per size class would each grow to the read-ahead's size (a model has
 * hundreds of tensor sizes).
 */
export const STREAM_ALIGN = 256;

interface Span {
  start: number;
  /** Which pass over the block the span was carved in. */
  lap: number;
  /** Views of the span not yet given back (`take`'s, and each `share`d one). */
  views: number;
}

export class StreamRing {
  /** Spans not yet reclaimed, oldest first. */
  private readonly spans: Span[] = [];
  private readonly spanOf = new WeakMap<Uint8Array, Span>();
  private head = 0;
  private lap = 0;

  constructor(private readonly memory: Buffer) {}

  get capacity(): number {
    return this.memory.byteLength;
  }

  /**
   * `bytes` bytes of the block starting at a multiple of `align` from the block's start (a power of
   * two, at least STREAM_ALIGN), or undefined when no free stretch is that long.
   */
  take(bytes: number, align = STREAM_ALIGN): Uint8Array | undefined {
    const size = Math.max(STREAM_ALIGN, Math.ceil(bytes / STREAM_ALIGN) * STREAM_ALIGN);
    const head = Math.ceil(this.head / align) * align;
    let start: number;
    const oldest = this.spans[0];
    if (!oldest) {
      start = 0;
    } else if (oldest.lap === this.lap) {
      // live spans lie in [oldest.start, head): free at the end, then at the start
      if (head + size <= this.capacity) start = head;
      else if (size <= oldest.start) {
        this.lap++;
        start = 0;
      } else return undefined;
    } else {
      // wrapped: live spans lie in [oldest.start, end) and [0, head)
      if (head + size <= oldest.start) start = head;
      else return undefined;
    }
    this.head = start + size;
    const span = { start, lap: this.lap, views: 1 };
    this.spans.push(span);
    const view = this.memory.subarray(start, start + bytes);
    this.spanOf.set(view, span);
    return view;
  }

  /**
   * Bytes [begin, end) of a view this ring handed out, as a view of its own: the memory is reclaimed
   * once the original and every shared view are given back. Undefined when `view` is not one of this
   * ring's.
   */
  share(view: Uint8Array, begin: number, end: number): Uint8Array | undefined {
    const span = this.spanOf.get(view);
    if (!span) return undefined;
    span.views++;
    const shared = view.subarray(begin, end);
    this.spanOf.set(shared, span);
    return shared;
  }

  /** Gives a buffer back; false when it is not one of this ring's (or was given back already). */
  give(view: Uint8Array): boolean {
    const span = this.spanOf.get(view);
    if (!span) return false;
    this.spanOf.delete(view);
    span.views--;
    while (this.spans[0] && this.spans[0].views === 0) this.spans.shift();
    if (this.spans.length === 0) this.head = 0;
    return true;
  }

  /** Bytes between the oldest unreturned buffer and the newest (what the ring holds now). */
  get held(): number {
    const oldest = this.spans[0];
    if (!oldest) return 0;
    return oldest.lap === this.lap ? this.head - oldest.start : this.capacity - oldest.start + this.head;
  }
}

import type { FileHandle } from "node:fs/promises";
import { GyozaError } from "../errors.js";

/** An open file as the queue reads it. */
export interface QueuedFile {
  readonly handle: FileHandle;
  /** For error messages. */
  readonly name: string;
}

interface ReadRequest {
  readonly file: QueuedFile;
  readonly target: Uint8Array;
  readonly offset: number;
  readonly resolve: (bytes: Uint8Array) => void;
  readonly reject: (error: unknown) => void;
  taken: boolean;
}

/** A batch reads at most this many bytes: 16 MiB, like `cat`-style sequential readers. */
const MAX_BATCH_BYTES = 16 << 20;
/** A batch fills at most this many buffers (far below the kernel's IOV_MAX of 1024). */
const MAX_BATCH_READS = 64;

/** One buffer of a batch's vectored read: a caller's range, or the bytes of a gap between two. */
interface Segment {
  readonly target: Uint8Array;
  readonly request?: ReadRequest;
}

/**
 * Runs file reads a few at a time, in the order asked, and joins waiting reads of neighbouring bytes
 * of one file into one system call (a vectored read that fills each caller's own buffer, no copy).
 *
 * Why a few at a time: Node runs file reads, writes and fsyncs on one small pool of threads (four by
 * default, eight from the `gyoza` bin). A writer reading far ahead would otherwise queue dozens of reads
 * in front of the output's block writes, and the pipeline would stall on writes while the disk reads ahead.
 *
 * Why joined: a merge reads every input front to back, but in thousands of pieces (a model has about
 * a thousand tensors, most of them a few KiB, and big ones are read 2 MiB at a time), and each read
 * costs the calling thread 10–80 µs to hand to the pool, more while the pool's threads compete for two
 * cores. A GyozaMix merge spent 0.67 s of its main thread on 8,000 such calls. Waiting reads that
 * continue one another are joined instead (up to MAX_BATCH_BYTES and MAX_BATCH_READS per call).
 *
 * Given `maxGapBytes`, reads a few bytes apart are joined too, the bytes between them read into a
 * scratch buffer and dropped: a torch `.ckpt` stores every tensor as a zip entry, its bytes 64–200
 * bytes after the previous tensor's (a data descriptor and the next local header between them), so
 * without this each of its ~1,100 tensors (most a few KiB) is a system call of its own.
 */
export class ReadQueue {
  private running = 0;
  /** Waiting reads, oldest first; joined ones stay here marked `taken` until they reach the front. */
  private waiting: ReadRequest[] = [];
  private front = 0;
  /** Waiting reads by file and by offset: where the read after a given byte can be found. */
  private readonly byOffset = new Map<QueuedFile, Map<number, ReadRequest[]>>();
  /** System calls made so far (reads and vectored reads). */
  calls = 0;

  constructor(
    /** Calls in flight at once, over every file. */
    readonly slots: number,
    private readonly maxBatchBytes = MAX_BATCH_BYTES,
    private readonly maxBatchReads = MAX_BATCH_READS,
    /** Waiting reads that start at most this many bytes after a batch ends are joined to it. */
    private readonly maxGapBytes = 0,
  ) {}

  /** Fills `target` with `file`'s bytes from `offset` (which the caller has checked lie in the file). */
  read(file: QueuedFile, target: Uint8Array, offset: number): Promise<Uint8Array> {
    if (target.byteLength === 0) return Promise.resolve(target);
    return new Promise((resolve, reject) => {
      const request: ReadRequest = { file, target, offset, resolve, reject, taken: false };
      this.waiting.push(request);
      let offsets = this.byOffset.get(file);
      if (!offsets) {
        offsets = new Map();
        this.byOffset.set(file, offsets);
      }
      const atOffset = offsets.get(offset);
      if (atOffset) atOffset.push(request);
      else offsets.set(offset, [request]);
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.running < this.slots) {
      const first = this.nextWaiting();
      if (!first) return;
      const batch: Segment[] = [{ target: first.target, request: first }];
      let end = first.offset + first.target.byteLength;
      let bytes = first.target.byteLength;
      let reads = 1;
      while (reads < this.maxBatchReads) {
        const next = this.following(first.file, end);
        if (!next) break;
        const gap = next.offset - end;
        if (bytes + gap + next.target.byteLength > this.maxBatchBytes) break;
        this.take(next);
        if (gap > 0) batch.push({ target: gapScratch(gap) });
        batch.push({ target: next.target, request: next });
        end = next.offset + next.target.byteLength;
        bytes += gap + next.target.byteLength;
        reads++;
      }
      this.running++;
      void this.run(first.file, first.offset, batch).finally(() => {
        this.running--;
        this.dispatch();
      });
    }
  }

  /**
   * The waiting read of `file` that starts at `end`, else (given a gap allowance) the one starting
   * nearest after it within `maxGapBytes`; undefined when none does.
   */
  private following(file: QueuedFile, end: number): ReadRequest | undefined {
    const offsets = this.byOffset.get(file);
    if (!offsets) return undefined;
    const exact = offsets.get(end)?.[0];
    if (exact || this.maxGapBytes === 0) return exact;
    // the waiting offsets of one file are few (a read-ahead's worth): a scan costs less than a call
    let nearest: number | undefined;
    for (const offset of offsets.keys()) {
      if (offset > end && offset - end <= this.maxGapBytes && (nearest === undefined || offset < nearest))
        nearest = offset;
    }
    return nearest === undefined ? undefined : offsets.get(nearest)![0];
  }

  /** The oldest read not yet taken into a batch, taken now; undefined when none waits. */
  private nextWaiting(): ReadRequest | undefined {
    while (this.front < this.waiting.length) {
      const request = this.waiting[this.front++]!;
      if (request.taken) continue;
      this.take(request);
      this.compact();
      return request;
    }
    this.waiting = [];
    this.front = 0;
    return undefined;
  }

  /** Drops the front of the list once it is most of it (keeps shifting O(1) amortised). */
  private compact(): void {
    if (this.front > 1024 && this.front * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.front);
      this.front = 0;
    }
  }

  private take(request: ReadRequest): void {
    request.taken = true;
    const offsets = this.byOffset.get(request.file)!;
    const atOffset = offsets.get(request.offset)!;
    atOffset.splice(atOffset.indexOf(request), 1);
    if (atOffset.length === 0) offsets.delete(request.offset);
    if (offsets.size === 0) this.byOffset.delete(request.file);
  }

  /**
   * Reads a batch of neighbouring ranges (and the gaps between them) in as few calls as the system
   * allows, handing each caller its buffer as soon as it is full. A short read continues where it
   * stopped; a read that finds the end of the file fails every range not yet filled.
   */
  private async run(file: QueuedFile, start: number, batch: readonly Segment[]): Promise<void> {
    const { handle, name } = file;
    let position = start;
    let index = 0;
    let within = 0; // bytes of batch[index] already read
    try {
      while (index < batch.length) {
        const current = batch[index]!.target.subarray(within);
        this.calls++;
        const bytesRead =
          index === batch.length - 1
            ? (await handle.read(current, 0, current.byteLength, position)).bytesRead
            : (await handle.readv([current, ...batch.slice(index + 1).map((s) => s.target)], position))
                .bytesRead;
        if (bytesRead === 0) throw new GyozaError("io", "file shrank while being read", { file: name });
        position += bytesRead;
        let left = bytesRead;
        while (left > 0) {
          const segment = batch[index]!;
          const missing = segment.target.byteLength - within;
          if (left < missing) {
            within += left;
            break;
          }
          left -= missing;
          within = 0;
          index++;
          segment.request?.resolve(segment.target);
        }
      }
    } catch (error) {
      for (const segment of batch.slice(index)) segment.request?.reject(error);
    }
  }
}

/**
 * Where the bytes of a gap between joined reads go: never read by anyone, so every gap of every batch
 * in flight shares one buffer (what lands there concurrently does not matter).
 */
let scratch: Uint8Array | undefined;
function gapScratch(bytes: number): Uint8Array {
  if (!scratch || scratch.byteLength < bytes) scratch = new Uint8Array(Math.max(bytes, 4096));
  return scratch.subarray(0, bytes);
}

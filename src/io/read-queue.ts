import type { FileHandle } from "node:fs/promises";
import { GyozaError } from "../errors.js";

/** An open file as the queue reads it. */
export interface QueuedFile {
  readonly handle: FileHandle;
  /** For error messages. */
  readonly name: string;
  /**
   * The same file opened with O_DIRECT, when its reads into `StreamMemory` should bypass the page
   * cache (`readDirect`). Its owner closes it.
   */
  direct?: FileHandle;
  /** Set at the first direct read the file system refuses: the file is read ordinarily from then on. */
  directRefused?: boolean;
}

/**
 * Memory a streamed read lands in (the buffer pool's stream ring, src/stream/buffer-pool.ts): aligned
 * stretches for O_DIRECT reads, each shared out as one buffer per caller, else a buffer per read.
 */
export interface StreamMemory {
  /** A buffer at an address that is a multiple of `align`, or undefined when none is free. */
  acquireStreamAligned(bytes: number, align: number): Uint8Array | undefined;
  /** Bytes [begin, end) of an aligned buffer as a buffer of its own, released on its own. */
  share(buffer: Uint8Array, begin: number, end: number): Uint8Array;
  release(buffer: Uint8Array): void;
  /** A buffer for an ordinary read. */
  acquireStream(bytes: number): Uint8Array;
}

interface ReadRequest {
  readonly file: QueuedFile;
  /** The caller's buffer; none for a direct read, which lands in `memory`. */
  readonly target: Uint8Array | undefined;
  readonly offset: number;
  readonly length: number;
  /** Where a direct read lands (direct reads are joined only with direct reads). */
  readonly memory: StreamMemory | undefined;
  readonly resolve: (bytes: Uint8Array) => void;
  readonly reject: (error: unknown) => void;
  taken: boolean;
}

/**
 * O_DIRECT wants the file offset, the length and the buffer address aligned to the device's logical
 * block size; this covers every common one (as for the output's O_DIRECT writes).
 */
export const DIRECT_READ_ALIGN = 4096;
/** A direct read joins neighbouring ranges up to this many bytes (aligned ends included). */
const MAX_DIRECT_BATCH_BYTES = 8 << 20;

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
    return this.enqueue(file, target, offset, target.byteLength, undefined);
  }

  /**
   * `length` bytes (at least one) of `file` from `offset`, read with O_DIRECT (`file.direct`) into
   * `memory`: one aligned read covers neighbouring waiting ranges, and each caller gets its part of it
   * as a buffer of its own (release it to `memory`). A file whose direct reads the file system refuses
   * is read ordinarily from then on. `offset` should be a multiple of the element size the caller
   * views the bytes as: the buffer's address keeps the offset's alignment.
   */
  readDirect(file: QueuedFile, offset: number, length: number, memory: StreamMemory): Promise<Uint8Array> {
    return this.enqueue(file, undefined, offset, length, memory);
  }

  private enqueue(
    file: QueuedFile,
    target: Uint8Array | undefined,
    offset: number,
    length: number,
    memory: StreamMemory | undefined,
  ): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const request: ReadRequest = { file, target, offset, length, memory, resolve, reject, taken: false };
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
      this.running++;
      const done = () => {
        this.running--;
        this.dispatch();
      };
      if (first.memory) {
        void this.runDirect(this.directBatch(first)).finally(done);
        continue;
      }
      const batch: Segment[] = [{ target: first.target!, request: first }];
      let end = first.offset + first.length;
      let bytes = first.length;
      let reads = 1;
      while (reads < this.maxBatchReads) {
        const next = this.following(first.file, end);
        if (!next || next.memory) break;
        const gap = next.offset - end;
        if (bytes + gap + next.length > this.maxBatchBytes) break;
        this.take(next);
        if (gap > 0) batch.push({ target: gapScratch(gap) });
        batch.push({ target: next.target!, request: next });
        end = next.offset + next.length;
        bytes += gap + next.length;
        reads++;
      }
      void this.run(first.file, first.offset, batch).finally(done);
    }
  }

  /** `first` and the waiting direct reads that continue it, within one aligned read's limits. */
  private directBatch(first: ReadRequest): ReadRequest[] {
    const batch = [first];
    const start = alignDown(first.offset);
    let end = first.offset + first.length;
    while (batch.length < this.maxBatchReads) {
      const next = this.following(first.file, end);
      if (!next || next.memory !== first.memory) break;
      if (alignUp(next.offset + next.length) - start > MAX_DIRECT_BATCH_BYTES) break;
      this.take(next);
      batch.push(next);
      end = next.offset + next.length;
    }
    return batch;
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
   * Reads a batch of direct reads (in file order) in one O_DIRECT read of their aligned span, and hands
   * each caller its part of it, shared. Where the memory has no aligned stretch free, or the file
   * system refuses the read (the file then reads ordinarily from here on), each range is read
   * ordinarily into a buffer of its own instead.
   */
  private async runDirect(batch: readonly ReadRequest[]): Promise<void> {
    const first = batch[0]!;
    const last = batch.at(-1)!;
    const { file } = first;
    const memory = first.memory!;
    const start = alignDown(first.offset);
    const needed = last.offset + last.length - start;
    const span = memory.acquireStreamAligned(alignUp(last.offset + last.length) - start, DIRECT_READ_ALIGN);
    const direct = file.directRefused ? undefined : file.direct;
    if (span && direct) {
      let filled = 0;
      try {
        while (filled < needed) {
          this.calls++;
          const { bytesRead } = await direct.read(span, filled, span.byteLength - filled, start + filled);
          filled += bytesRead;
          // short of an aligned end, the read stopped at the end of the file
          if (bytesRead === 0 || (filled < needed && filled % DIRECT_READ_ALIGN !== 0))
            throw new GyozaError("io", "file shrank while being read", { file: file.name });
        }
      } catch (error) {
        memory.release(span);
        if ((error as NodeJS.ErrnoException).code !== "EINVAL" || filled > 0) {
          for (const request of batch) request.reject(error);
          return;
        }
        file.directRefused = true; // refused: read this file ordinarily
        return this.runOrdinary(batch);
      }
      for (const request of batch)
        request.resolve(memory.share(span, request.offset - start, request.offset - start + request.length));
      memory.release(span);
      return;
    }
    if (span) memory.release(span);
    return this.runOrdinary(batch);
  }

  /** Direct reads read ordinarily instead, each into a stream buffer of its own. */
  private async runOrdinary(batch: readonly ReadRequest[]): Promise<void> {
    const segments: Segment[] = [];
    let end = batch[0]!.offset;
    for (const request of batch) {
      if (request.offset > end) segments.push({ target: gapScratch(request.offset - end) });
      const target = request.memory!.acquireStream(request.length);
      segments.push({
        target,
        request: {
          ...request,
          reject: (error) => {
            request.memory!.release(target);
            request.reject(error);
          },
        },
      });
      end = request.offset + request.length;
    }
    return this.run(batch[0]!.file, batch[0]!.offset, segments);
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

function alignDown(offset: number): number {
  return offset - (offset % DIRECT_READ_ALIGN);
}

function alignUp(offset: number): number {
  return Math.ceil(offset / DIRECT_READ_ALIGN) * DIRECT_READ_ALIGN;
}

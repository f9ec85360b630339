import { GyozaError } from "../../errors.js";
import { type ByteSource, checkRange, readStreamed, type StreamMemory } from "../byte-source.js";
import { entryDataOffset, type ZipEntry } from "./read-zip-directory.js";

/** A zip entry whose data offset was predicted, and the check of its local header once started. */
interface PredictedEntry {
  readonly entry: ZipEntry;
  readonly dataOffset: number;
  check?: Promise<void>;
  checked?: boolean;
}

/**
 * The bytes of a torch zip whose entries' data offsets were predicted from torch's layout instead of
 * read from every local header when it was opened (`locateEntryData`). A read that touches an entry's
 * data checks that entry's local header first, once: the header read is queued just ahead of the data
 * read (the read queue joins the two into one call when they wait together, a few dozen bytes apart),
 * and the read fails, returning nothing, when the header puts the data elsewhere. So a merge starts
 * without waiting for ~1,100 scattered header reads, and no byte of a mislocated entry is ever used.
 *
 * `entries` must not overlap (`locateEntryData` checks that each ends before the next header).
 */
export class CheckedEntrySource implements ByteSource {
  readonly name: string;
  readonly size: number;
  /** Entries with data, by data offset. */
  private readonly entries: PredictedEntry[];

  constructor(
    private readonly parent: ByteSource,
    entries: readonly { entry: ZipEntry; dataOffset: number }[],
  ) {
    this.name = parent.name;
    this.size = parent.size;
    this.entries = entries
      .filter(({ entry }) => entry.size > 0)
      .map(({ entry, dataOffset }) => ({ entry, dataOffset }))
      .sort((a, b) => a.dataOffset - b.dataOffset);
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const checks = this.checksFor(offset, length);
    const read = this.parent.read(offset, length);
    return checks ? Promise.all([read, checks]).then(([bytes]) => bytes) : read;
  }

  readInto(target: Uint8Array, offset: number): Promise<Uint8Array> {
    checkRange(this, offset, target.byteLength);
    const checks = this.checksFor(offset, target.byteLength);
    const read = this.parent.readInto(target, offset);
    return checks ? Promise.all([read, checks]).then(([bytes]) => bytes) : read;
  }

  readStreamed(offset: number, length: number, memory: StreamMemory): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const checks = this.checksFor(offset, length);
    const read = readStreamed(this.parent, offset, length, memory);
    if (!checks) return read;
    // a mislocated entry fails the read, its buffer given back (the caller never sees it)
    return Promise.allSettled([read, checks]).then(([bytes, checked]) => {
      if (bytes.status === "rejected") throw bytes.reason;
      if (checked.status === "rejected") {
        memory.release(bytes.value);
        throw checked.reason;
      }
      return bytes.value;
    });
  }

  close(): Promise<void> {
    return this.parent.close();
  }

  /** The checks of every entry whose data [offset, offset+length) touches, started where they are not yet. */
  private checksFor(offset: number, length: number): Promise<unknown> | undefined {
    if (length === 0) return undefined;
    const end = offset + length;
    // the last entry starting at or before `offset` may reach into the range; later ones start inside it
    let low = 0;
    let high = this.entries.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.entries[middle]!.dataOffset <= offset) low = middle + 1;
      else high = middle;
    }
    const pending: Promise<void>[] = [];
    for (let at = Math.max(0, low - 1); at < this.entries.length; at++) {
      const predicted = this.entries[at]!;
      if (predicted.dataOffset >= end) break;
      if (predicted.checked || predicted.dataOffset + predicted.entry.size <= offset) continue;
      predicted.check ??= this.check(predicted).then(() => {
        predicted.checked = true;
      });
      pending.push(predicted.check);
    }
    return pending.length === 0 ? undefined : pending.length === 1 ? pending[0] : Promise.all(pending);
  }

  private async check({ entry, dataOffset }: PredictedEntry): Promise<void> {
    const actual = await entryDataOffset(this.parent, entry);
    if (actual !== dataOffset) {
      throw new GyozaError(
        "format",
        `zip: the local header of ${entry.name} puts its data at byte ${actual}, not at ${dataOffset} where torch's layout (and the file's other entries) put it`,
        { file: this.name, path: entry.name },
      );
    }
  }
}

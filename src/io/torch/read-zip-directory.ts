import { GyozaError } from "../../errors.js";
import type { ByteSource } from "../byte-source.js";

/** Entries in one archive; an SD checkpoint has ~1,200, every entry costs ≥ 46 directory bytes anyway. */
export const MAX_ZIP_ENTRIES = 1_000_000;
/** Central directory bytes read at once (CWE-770); 1M entries with short names fit. */
export const MAX_CENTRAL_DIRECTORY_BYTES = 256 * 1024 * 1024;

const EOCD_SIGNATURE = 0x06054b50;
const EOCD_BYTES = 22;
const MAX_COMMENT_BYTES = 0xffff;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const ZIP64_EOCD_BYTES = 56;
const CENTRAL_ENTRY_SIGNATURE = 0x02014b50;
const CENTRAL_ENTRY_BYTES = 46;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const LOCAL_HEADER_BYTES = 30;
const ZIP64_EXTRA_ID = 0x0001;
const U32_SENTINEL = 0xffffffff;

export interface ZipEntry {
  readonly name: string;
  /** Bytes of the name as stored (UTF-8). */
  readonly nameLength: number;
  /** Offset of the local header. */
  readonly headerOffset: number;
  readonly size: number;
  readonly crc32: number;
  readonly method: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads the central directory of a zip (with zip64 records, as torch always writes them). Sizes
 * come from the central directory because torch's local headers carry zeros; every offset and size
 * is checked against the file before it is used.
 */
export async function readZipDirectory(source: ByteSource): Promise<ZipEntry[]> {
  const fail = (message: string) => new GyozaError("format", `zip: ${message}`, { file: source.name });
  const eocdOffset = await findEndOfCentralDirectory(source);
  if (eocdOffset < 0) {
    // A torch zip ends with its directory, so a cut download loses it first.
    throw new GyozaError(
      "format",
      "zip: no end-of-central-directory record: the file is truncated (or not a zip at all)",
      { file: source.name, fix: "if it was downloaded or copied, do it again" },
    );
  }
  const eocd = view(await source.read(eocdOffset, EOCD_BYTES));
  let entryCount = eocd.getUint16(10, true);
  let directorySize = eocd.getUint32(12, true);
  let directoryOffset = eocd.getUint32(16, true);
  let directoryEnd = eocdOffset;

  const locatorOffset = eocdOffset - ZIP64_LOCATOR_BYTES;
  if (locatorOffset >= 0) {
    const locator = view(await source.read(locatorOffset, ZIP64_LOCATOR_BYTES));
    if (locator.getUint32(0, true) === ZIP64_LOCATOR_SIGNATURE) {
      const zip64Offset = safeNumber(locator.getBigUint64(8, true));
      if (zip64Offset === undefined || zip64Offset + ZIP64_EOCD_BYTES > locatorOffset) {
        throw fail("zip64 locator points outside the file");
      }
      const record = view(await source.read(zip64Offset, ZIP64_EOCD_BYTES));
      if (record.getUint32(0, true) !== ZIP64_EOCD_SIGNATURE)
        throw fail("zip64 end record signature is wrong");
      const count = safeNumber(record.getBigUint64(32, true));
      const size = safeNumber(record.getBigUint64(40, true));
      const offset = safeNumber(record.getBigUint64(48, true));
      if (count === undefined || size === undefined || offset === undefined) {
        throw fail("zip64 end record holds impossible sizes");
      }
      [entryCount, directorySize, directoryOffset, directoryEnd] = [count, size, offset, zip64Offset];
    }
  }
  if (directoryOffset + directorySize > directoryEnd) {
    throw fail(`central directory (${directorySize} bytes at ${directoryOffset}) runs past its end record`);
  }
  if (directorySize > MAX_CENTRAL_DIRECTORY_BYTES) {
    throw new GyozaError("limit", `zip: central directory of ${directorySize} bytes is over the limit`, {
      file: source.name,
    });
  }
  if (entryCount > MAX_ZIP_ENTRIES || entryCount * CENTRAL_ENTRY_BYTES > directorySize) {
    throw fail(`${entryCount} entries cannot fit a ${directorySize}-byte central directory`);
  }
  const directory = await source.read(directoryOffset, directorySize);
  return parseCentralDirectory(directory, entryCount, directoryOffset, fail);
}

/** Offset of the data of `entry`, from its local header (name and extra lengths differ there). */
export async function entryDataOffset(source: ByteSource, entry: ZipEntry): Promise<number> {
  checkLocalHeaderFits(source, entry);
  return dataOffsetFromHeader(source, entry, view(await source.read(entry.headerOffset, LOCAL_HEADER_BYTES)));
}

/**
 * Local headers this close to one another are read together, with the bytes between them: a torch
 * file puts a ~100-byte header before every storage and most storages of an SD checkpoint are
 * small, so 1,131 headers take ~420 reads instead of 1,131 (each read costs a round trip to the
 * thread pool, ~0.1 ms even from the page cache), and the small storages read on the way are in
 * the page cache when the merge asks for them.
 */
export const LOCAL_HEADER_WINDOW_BYTES = 64 * 1024;
/** Local-header reads in flight at once (the read queue runs a few at a time and joins neighbours). */
const LOCAL_HEADER_READS_IN_FLIGHT = 64;

/** `entryDataOffset` of every entry, in the same order, from as few reads as the layout allows. */
export async function entryDataOffsets(source: ByteSource, entries: readonly ZipEntry[]): Promise<number[]> {
  for (const entry of entries) checkLocalHeaderFits(source, entry);
  const byOffset = entries.map((entry, index) => ({ entry, index }));
  byOffset.sort((a, b) => a.entry.headerOffset - b.entry.headerOffset);
  const groups: { start: number; end: number; members: typeof byOffset }[] = [];
  for (const member of byOffset) {
    const start = member.entry.headerOffset;
    const end = start + LOCAL_HEADER_BYTES;
    const last = groups.at(-1);
    if (last && end - last.start <= LOCAL_HEADER_WINDOW_BYTES) {
      last.end = Math.max(last.end, end);
      last.members.push(member);
    } else groups.push({ start, end, members: [member] });
  }
  const offsets = new Array<number>(entries.length);
  for (let first = 0; first < groups.length; first += LOCAL_HEADER_READS_IN_FLIGHT) {
    await Promise.all(
      groups.slice(first, first + LOCAL_HEADER_READS_IN_FLIGHT).map(async (group) => {
        const bytes = await source.read(group.start, group.end - group.start);
        for (const { entry, index } of group.members) {
          const at = entry.headerOffset - group.start;
          offsets[index] = dataOffsetFromHeader(
            source,
            entry,
            view(bytes.subarray(at, at + LOCAL_HEADER_BYTES)),
          );
        }
      }),
    );
  }
  return offsets;
}

/** torch (miniz) pads every entry's local header with an "FB" extra field to align its data to 64 bytes. */
const TORCH_DATA_ALIGNMENT = 64;
const ZIP64_EXTRA_HEADER_BYTES = 4;
const PADDING_EXTRA_HEADER_BYTES = 4;

/**
 * Where torch's writer (PyTorchStreamWriter, torch ≥ 1.6) puts an entry's data: after the 30-byte local
 * header, the name, a zip64 extra field where the size or the header's offset needs 64 bits, and an
 * "FB" padding field up to the next multiple of 64. Checked against the local headers of every real
 * torch file in the fixtures; a file that does not follow it is located header by header.
 */
export function torchDataOffset(entry: ZipEntry): number {
  const large = entry.size >= U32_SENTINEL;
  const far = entry.headerOffset >= U32_SENTINEL;
  const zip64 = large || far ? ZIP64_EXTRA_HEADER_BYTES + (large ? 16 : 0) + (far ? 8 : 0) : 0;
  const unpadded =
    entry.headerOffset + LOCAL_HEADER_BYTES + entry.nameLength + zip64 + PADDING_EXTRA_HEADER_BYTES;
  return Math.ceil(unpadded / TORCH_DATA_ALIGNMENT) * TORCH_DATA_ALIGNMENT;
}

/** Where the data of a set of entries starts, and how that was learnt. */
export interface LocatedEntries {
  /** The data offset of each entry, in the order given. */
  readonly offsets: number[];
  /**
   * True when the offsets follow torch's layout (`torchDataOffset`) and only a few local headers were
   * read to confirm it: each of the others must be checked before its bytes are used (`CheckedEntrySource`).
   * False when every local header was read.
   */
  readonly predicted: boolean;
}

/**
 * The data offsets of `entries` without reading ~1,100 scattered local headers where the file is laid
 * out as torch writes it: the first, a middle and the last entry's headers are read, and when they and
 * the central directory agree with `torchDataOffset` (every entry's predicted data inside the file and
 * ending before the next entry's header) the rest are predicted. On a cold disk the headers cost an SD
 * checkpoint 685 random reads, ~0.3 s before a merge can start, and scatter cached islands through
 * the file that split the merge's later sequential reads. Any disagreement: every header is read
 * (`entryDataOffsets`).
 */
export async function locateEntryData(
  source: ByteSource,
  entries: readonly ZipEntry[],
): Promise<LocatedEntries> {
  const predicted = entries.map(torchDataOffset);
  const order = entries.map((_, index) => index).filter((index) => entries[index]!.size > 0);
  order.sort((a, b) => entries[a]!.headerOffset - entries[b]!.headerOffset);
  const fitsLayout = order.every((index, at) => {
    const end = predicted[index]! + entries[index]!.size;
    const next = order[at + 1];
    return end <= (next === undefined ? source.size : entries[next]!.headerOffset);
  });
  if (fitsLayout && order.length > 0) {
    const samples = [...new Set([order[0]!, order[order.length >> 1]!, order[order.length - 1]!])];
    const actual = await Promise.all(samples.map((index) => entryDataOffset(source, entries[index]!)));
    if (samples.every((index, at) => actual[at] === predicted[index]))
      return { offsets: predicted, predicted: true };
  }
  return { offsets: await entryDataOffsets(source, entries), predicted: false };
}

function checkLocalHeaderFits(source: ByteSource, entry: ZipEntry): void {
  if (entry.headerOffset + LOCAL_HEADER_BYTES > source.size) {
    throw new GyozaError("format", "zip: local header runs past the end", {
      file: source.name,
      path: entry.name,
    });
  }
}

function dataOffsetFromHeader(source: ByteSource, entry: ZipEntry, header: DataView): number {
  const fail = (message: string) =>
    new GyozaError("format", `zip: ${message}`, { file: source.name, path: entry.name });
  if (header.getUint32(0, true) !== LOCAL_HEADER_SIGNATURE) throw fail("local header signature is wrong");
  const dataOffset =
    entry.headerOffset + LOCAL_HEADER_BYTES + header.getUint16(26, true) + header.getUint16(28, true);
  if (dataOffset + entry.size > source.size) {
    throw fail(`entry data (${entry.size} bytes at ${dataOffset}) runs past the end of the file`);
  }
  return dataOffset;
}

async function findEndOfCentralDirectory(source: ByteSource): Promise<number> {
  if (source.size < EOCD_BYTES) return -1;
  const windowStart = Math.max(0, source.size - EOCD_BYTES - MAX_COMMENT_BYTES);
  const tail = await source.read(windowStart, source.size - windowStart);
  const tailView = view(tail);
  for (let at = tail.byteLength - EOCD_BYTES; at >= 0; at--) {
    if (tailView.getUint32(at, true) !== EOCD_SIGNATURE) continue;
    // The comment length must reach exactly to the end of the file.
    if (at + EOCD_BYTES + tailView.getUint16(at + 20, true) === tail.byteLength) return windowStart + at;
  }
  return -1;
}

function parseCentralDirectory(
  directory: Uint8Array,
  entryCount: number,
  directoryOffset: number,
  fail: (message: string) => GyozaError,
): ZipEntry[] {
  const data = view(directory);
  const entries: ZipEntry[] = [];
  let at = 0;
  for (let index = 0; index < entryCount; index++) {
    if (at + CENTRAL_ENTRY_BYTES > directory.byteLength)
      throw fail(`central directory entry ${index} is cut off`);
    if (data.getUint32(at, true) !== CENTRAL_ENTRY_SIGNATURE) {
      throw fail(`central directory entry ${index} at byte ${directoryOffset + at} has a wrong signature`);
    }
    const flags = data.getUint16(at + 8, true);
    const method = data.getUint16(at + 10, true);
    const crc32 = data.getUint32(at + 16, true);
    let compressedSize = data.getUint32(at + 20, true);
    let size = data.getUint32(at + 24, true);
    const nameLength = data.getUint16(at + 28, true);
    const extraLength = data.getUint16(at + 30, true);
    const commentLength = data.getUint16(at + 32, true);
    let headerOffset = data.getUint32(at + 42, true);
    const nameStart = at + CENTRAL_ENTRY_BYTES;
    const next = nameStart + nameLength + extraLength + commentLength;
    if (next > directory.byteLength) throw fail(`central directory entry ${index} runs past the directory`);
    let name: string;
    try {
      name = utf8.decode(directory.subarray(nameStart, nameStart + nameLength));
    } catch {
      throw fail(`entry ${index} has a name that is not UTF-8`);
    }
    // Zip64 extra: 8-byte values for exactly those fields whose 32-bit value is the sentinel, in this order.
    const extraStart = nameStart + nameLength;
    for (let extra = extraStart; extra + 4 <= extraStart + extraLength; ) {
      const id = data.getUint16(extra, true);
      const length = data.getUint16(extra + 2, true);
      const end = extra + 4 + length;
      if (end > extraStart + extraLength) throw fail(`entry ${name} has a malformed extra field`);
      if (id === ZIP64_EXTRA_ID) {
        let field = extra + 4;
        const next64 = (): number => {
          if (field + 8 > end) throw fail(`entry ${name} has a short zip64 extra field`);
          const value = safeNumber(data.getBigUint64(field, true));
          field += 8;
          if (value === undefined) throw fail(`entry ${name} has an impossible zip64 size`);
          return value;
        };
        if (size === U32_SENTINEL) size = next64();
        if (compressedSize === U32_SENTINEL) compressedSize = next64();
        if (headerOffset === U32_SENTINEL) headerOffset = next64();
      }
      extra = end;
    }
    if (flags & 0x1) throw fail(`entry ${name} is encrypted`);
    if (method !== 0 || compressedSize !== size) {
      throw fail(
        `entry ${name} is compressed (method ${method}); torch checkpoints store entries uncompressed`,
      );
    }
    if (headerOffset >= directoryOffset)
      throw fail(`entry ${name} has its local header past the central directory`);
    entries.push({ name, nameLength, headerOffset, size, crc32, method });
    at = next;
  }
  return entries;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function safeNumber(value: bigint): number | undefined {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

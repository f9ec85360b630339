import { GyozaError } from "../../errors.js";
import { type ByteSource, SliceByteSource } from "../byte-source.js";
import { interpretPickle, type PickleResult, type PickleValue } from "../pickle/index.js";
import { CheckedEntrySource } from "./checked-entry-source.js";
import { readLegacyTorchFile } from "./read-legacy.js";
import { entryDataOffset, locateEntryData, readZipDirectory, type ZipEntry } from "./read-zip-directory.js";
import { checkRecordSize, checkTensorExtents, type TorchStorageInfo } from "./storage-info.js";

/** A torch checkpoint as parsed: the object tree with deferred tensors, and where each storage lives. */
export interface TorchFile {
  readonly format: "zip" | "legacy";
  /** The unpickled object (dicts are Maps; tensors are TorchTensorRef). */
  readonly root: PickleValue;
  /** Sorted distinct `module.name` of every global the pickle(s) reference. */
  readonly globals: readonly string[];
  /** Sorted distinct pickletools opcode names seen. */
  readonly opcodes: readonly string[];
  /** Storages by key, in order of first reference. */
  readonly storages: ReadonlyMap<string, TorchStorageInfo>;
  /** Zip files: the directory holding data.pkl (torch 1.13 uses the file stem, torch 2 `archive`). */
  readonly archivePrefix?: string;
  /**
   * Where storage bytes are read from, when not the parsed source itself: a zip whose data offsets were
   * predicted checks each entry's local header on its first read (`CheckedEntrySource`).
   */
  readonly dataSource?: ByteSource;
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
const DATA_PICKLE = /^[^/]+\/data\.pkl$/;
/** The byteorder record holds "little" or "big". */
const MAX_BYTEORDER_BYTES = 16;

/**
 * Parses a `.ckpt` / `.pt` / `.pth` / `.bin` written by torch.save (zip or legacy format) without
 * executing anything: the pickle is interpreted with an allowlist, storages are located and every
 * size checked, and no tensor bytes are read.
 */
export async function parseTorchFile(source: ByteSource): Promise<TorchFile> {
  const head = source.size >= 4 ? await source.read(0, 4) : new Uint8Array(0);
  const isZip = ZIP_MAGIC.every((byte, i) => head[i] === byte);
  const parsed = isZip ? await parseZip(source) : await parseLegacy(source);
  checkTensorExtents(source.name, parsed.root);
  return parsed;
}

async function parseZip(source: ByteSource): Promise<TorchFile> {
  const fail = (message: string) => new GyozaError("format", message, { file: source.name });
  const entries = new Map<string, ZipEntry>();
  for (const entry of await readZipDirectory(source)) {
    if (entries.has(entry.name)) throw fail(`zip holds two entries named ${entry.name}`);
    entries.set(entry.name, entry);
  }
  const pickles = [...entries.values()].filter((entry) => DATA_PICKLE.test(entry.name));
  if (pickles.length !== 1) {
    throw fail(`a torch checkpoint holds exactly one <dir>/data.pkl, this zip holds ${pickles.length}`);
  }
  const pickleEntry = pickles[0]!;
  const archivePrefix = pickleEntry.name.slice(0, -"/data.pkl".length);
  const pickleOffset = await entryDataOffset(source, pickleEntry);
  // Reads of the pickle cannot leave its entry, even where the file has more bytes.
  const pickleSource = new SliceByteSource(
    source,
    pickleOffset,
    pickleEntry.size,
    `${source.name} (${pickleEntry.name})`,
  );
  await checkByteOrder(source, entries.get(`${archivePrefix}/byteorder`));
  const result = await interpretPickle(pickleSource);

  const located = [...result.storages.values()];
  const storageEntries = located.map((storage) => {
    const entry = entries.get(`${archivePrefix}/data/${storage.key}`);
    if (!entry) {
      throw fail(
        `storage ${storage.key} is referenced by data.pkl but the zip has no ${archivePrefix}/data/${storage.key}`,
      );
    }
    return entry;
  });
  // Most data offsets follow from torch's layout; otherwise local headers are read concurrently and
  // neighbours together (one at a time, a 1,800-storage checkpoint waits ~1 s on I/O).
  const { offsets: dataOffsets, predicted } = await locateEntryData(source, storageEntries);
  const storages = new Map<string, TorchStorageInfo>();
  located.forEach((storage, index) => {
    const { name: entryName, size } = storageEntries[index]!;
    const byteLength = checkRecordSize(source.name, storage, size, entryName);
    storages.set(storage.key, {
      key: storage.key,
      dtype: storage.dtype,
      numel: storage.numel,
      location: storage.location,
      dataOffset: dataOffsets[index]!,
      byteLength,
      persistentIdLength: storage.persistentIdLength,
      entryName,
    });
  });
  const dataSource = predicted
    ? new CheckedEntrySource(
        source,
        storageEntries.map((entry, index) => ({ entry, dataOffset: dataOffsets[index]! })),
      )
    : undefined;
  return {
    format: "zip",
    root: result.value,
    ...summarize([result]),
    storages,
    archivePrefix,
    ...(dataSource ? { dataSource } : {}),
  };
}

/** torch ≥ 2.1 records the writer's byte order; storages of a big-endian writer would read as garbage. */
async function checkByteOrder(source: ByteSource, entry: ZipEntry | undefined): Promise<void> {
  if (!entry) return; // torch < 2.1 wrote no record and only little-endian files in practice
  const fail = (message: string) =>
    new GyozaError("format", message, { file: source.name, path: entry.name });
  if (entry.size > MAX_BYTEORDER_BYTES) throw fail(`byteorder record of ${entry.size} bytes`);
  const bytes = await source.read(await entryDataOffset(source, entry), entry.size);
  const order = new TextDecoder().decode(bytes);
  if (order !== "little")
    throw fail(`checkpoint was written with byte order ${JSON.stringify(order)}; only "little" is supported`);
}

async function parseLegacy(source: ByteSource): Promise<TorchFile> {
  const legacy = await readLegacyTorchFile(source);
  return { format: "legacy", root: legacy.root, ...summarize(legacy.pickles), storages: legacy.storages };
}

function summarize(results: readonly PickleResult[]): { globals: string[]; opcodes: string[] } {
  const globals = new Set(results.flatMap((result) => [...result.globals]));
  const opcodes = new Set(results.flatMap((result) => [...result.opcodes]));
  return { globals: [...globals].sort(), opcodes: [...opcodes].sort() };
}

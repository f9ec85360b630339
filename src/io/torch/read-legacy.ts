import { GyozaError } from "../../errors.js";
import type { ByteSource } from "../byte-source.js";
import { dtypeBytes } from "../dtype.js";
import {
  interpretPickle,
  PickleDict,
  PickleList,
  type PickleResult,
  type PickleValue,
} from "../pickle/index.js";
import { checkRecordSize, type TorchStorageInfo } from "./storage-info.js";

/** torch.serialization's MAGIC_NUMBER, the first pickle of a legacy file. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
/** torch.serialization's PROTOCOL_VERSION, the second pickle. */
const LEGACY_PROTOCOL_VERSION = 1001;
/** Each storage record starts with its element count as a little-endian int64. */
const COUNT_BYTES = 8;

export interface LegacyTorchFile {
  readonly root: PickleValue;
  readonly pickles: PickleResult[];
  readonly storages: Map<string, TorchStorageInfo>;
}

/**
 * Legacy (pre-1.6, `_use_new_zipfile_serialization=False`) files: five pickles (magic number,
 * protocol version, sys_info, the object, the storage keys), then per key an int64 element count
 * and the raw bytes. Every count is checked against the bytes that remain before anything is used.
 */
export async function readLegacyTorchFile(source: ByteSource): Promise<LegacyTorchFile> {
  const fail = (message: string) => new GyozaError("format", message, { file: source.name });
  const magic = await interpretPickle(source, 0);
  if (magic.value !== LEGACY_MAGIC) {
    throw fail("not a PyTorch checkpoint: neither a zip nor a legacy torch.save file (no magic number)");
  }
  const protocol = await interpretPickle(source, magic.endOffset);
  if (protocol.value !== LEGACY_PROTOCOL_VERSION) {
    throw fail(`legacy checkpoint protocol ${String(protocol.value)} is not ${LEGACY_PROTOCOL_VERSION}`);
  }
  const sysInfo = await interpretPickle(source, protocol.endOffset);
  if (!(sysInfo.value instanceof PickleDict) || sysInfo.value.entries.get("little_endian") !== true) {
    throw fail("legacy checkpoint is not little-endian (sys_info.little_endian is not True)");
  }
  const main = await interpretPickle(source, sysInfo.endOffset);
  const keyList = await interpretPickle(source, main.endOffset);
  if (!(keyList.value instanceof PickleList) || keyList.value.items.some((key) => typeof key !== "string")) {
    throw fail("legacy checkpoint storage key list is not a list of strings");
  }

  const storages = new Map<string, TorchStorageInfo>();
  let position = keyList.endOffset;
  for (const key of keyList.value.items as string[]) {
    const storage = main.storages.get(key);
    if (!storage)
      throw fail(`storage record ${key} is not referenced by the pickle, so its dtype is unknown`);
    if (storages.has(key)) throw fail(`storage key ${key} is listed twice`);
    if (position + COUNT_BYTES > source.size) {
      throw fail(`storage record ${key} at byte ${position} runs past the end of the file`);
    }
    const countBytes = await source.read(position, COUNT_BYTES);
    const count = new DataView(countBytes.buffer, countBytes.byteOffset, COUNT_BYTES).getBigInt64(0, true);
    const remaining = source.size - position - COUNT_BYTES;
    const itemSize = BigInt(dtypeBytes(storage.dtype));
    if (count < 0n || count * itemSize > BigInt(remaining)) {
      throw fail(
        `storage record ${key} at byte ${position} claims ${count} ${storage.dtype} elements (${count * itemSize} bytes) but only ${remaining} bytes remain`,
      );
    }
    const byteLength = checkRecordSize(
      source.name,
      storage,
      Number(count * itemSize),
      `its record at byte ${position}`,
    );
    storages.set(key, {
      key,
      dtype: storage.dtype,
      numel: storage.numel,
      location: storage.location,
      dataOffset: position + COUNT_BYTES,
      byteLength,
      persistentIdLength: storage.persistentIdLength,
    });
    position += COUNT_BYTES + byteLength;
  }
  for (const key of main.storages.keys()) {
    if (!storages.has(key)) throw fail(`storage ${key} is referenced by the pickle but has no record`);
  }
  return { root: main.value, pickles: [magic, protocol, sysInfo, main, keyList], storages };
}

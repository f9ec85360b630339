export { openTorchCheckpoint, torchCheckpointFromFile } from "./open-torch-checkpoint.js";
export { parseTorchFile, type TorchFile } from "./parse-torch-file.js";
export {
  MAX_CENTRAL_DIRECTORY_BYTES,
  MAX_ZIP_ENTRIES,
  readZipDirectory,
  type ZipEntry,
} from "./read-zip-directory.js";
export type { TorchStorageInfo } from "./storage-info.js";
export {
  TorchCheckpointWriter,
  type TorchCheckpointWriterOptions,
  type TorchDataOrder,
} from "./torch-checkpoint-writer.js";
export {
  type TorchTensorSource,
  type WriteTorchCheckpointOptions,
  type WriteTorchCheckpointResult,
  writeTorchCheckpoint,
} from "./write-torch-checkpoint.js";

// Reads a file front to back in 16 MiB reads, like `cat`: the read side of the benchmarks' baselines.
// Plain JavaScript, so the floor's child process (io-floor-child.mjs) runs it without a loader.
import { open } from "node:fs/promises";

export const READ_CHUNK_BYTES = 16 << 20;

export async function readWholeFile(path) {
  const handle = await open(path, "r");
  const buffer = Buffer.alloc(READ_CHUNK_BYTES);
  try {
    while ((await handle.read(buffer, 0, READ_CHUNK_BYTES, null)).bytesRead > 0);
  } finally {
    await handle.close();
  }
}

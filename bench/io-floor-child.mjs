// The raw I/O floor as its own process (spawned by bench/io-floor.ts, so it starts like gyoza does):
// read every input front to back while writing an output of the same size, all concurrently, fsync
// at the end. Nothing is computed. Plain JavaScript, so no TypeScript loader adds to its start-up.
//
//   node bench/io-floor-child.mjs OUTPUT BYTES INPUT...
import { open } from "node:fs/promises";
import { READ_CHUNK_BYTES, readWholeFile } from "./read-file.mjs";

const [, , output, bytesText, ...inputs] = process.argv;
const outputBytes = Number(bytesText);
const chunk = READ_CHUNK_BYTES;

async function writeAll() {
  const handle = await open(output, "w");
  const buffer = Buffer.alloc(chunk, 0x5a);
  try {
    for (let done = 0; done < outputBytes; done += chunk)
      await handle.write(buffer, 0, Math.min(chunk, outputBytes - done));
    await handle.sync();
  } finally {
    await handle.close();
  }
}

await Promise.all([...inputs.map(readWholeFile), writeAll()]);

// The raw I/O floor as its own process (spawned by bench/io-floor.ts, so it starts like gyoza does):
// read every input front to back while writing an output of the same size, all concurrently, fsync
// at the end. Nothing is computed. Plain JavaScript, so no TypeScript loader adds to its start-up.
// With --direct the output is written with O_DIRECT from page-aligned memory (no page-cache copy),
// as gyoza writes safetensors outputs; the file is then cut to its exact size.
//
//   node bench/io-floor-child.mjs [--direct] OUTPUT BYTES INPUT...
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { READ_CHUNK_BYTES, readWholeFile } from "./read-file.mjs";

const args = process.argv.slice(2);
const direct = args[0] === "--direct";
const [output, bytesText, ...inputs] = direct ? args.slice(1) : args;
const outputBytes = Number(bytesText);
const chunk = READ_CHUNK_BYTES;
const ALIGN = 4096;

async function writeAll() {
  const handle = await open(output, "w");
  // a WebAssembly memory starts on a page boundary, as O_DIRECT needs
  const buffer = direct
    ? Buffer.from(new WebAssembly.Memory({ initial: chunk / 65536 }).buffer).fill(0x5a)
    : Buffer.alloc(chunk, 0x5a);
  const target = direct ? await open(output, constants.O_WRONLY | constants.O_DIRECT) : handle;
  try {
    for (let done = 0; done < outputBytes; done += chunk) {
      const n = Math.min(chunk, outputBytes - done);
      await target.write(buffer, 0, direct ? Math.ceil(n / ALIGN) * ALIGN : n, done);
    }
    if (direct) await handle.truncate(outputBytes);
    await handle.sync();
  } finally {
    if (direct) await target.close();
    await handle.close();
  }
}

await Promise.all([...inputs.map(readWholeFile), writeAll()]);

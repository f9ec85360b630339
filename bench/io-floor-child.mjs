// The raw I/O floor as its own process (spawned by bench/io-floor.ts, so it starts like gyoza does):
// read every input front to back while writing an output of the same size, all concurrently, fsync
// at the end. Nothing is computed. Plain JavaScript, so no TypeScript loader adds to its start-up.
//
//   node bench/io-floor-child.mjs OUTPUT BYTES INPUT...
import { open } from "node:fs/promises";

const [, , output, bytesText, ...inputs] = process.argv;
const outputBytes = Number(bytesText);
const chunk = 16 << 20;

async function readAll(path) {
  const handle = await open(path, "r");
  const buffer = Buffer.alloc(chunk);
  try {
    while ((await handle.read(buffer, 0, chunk, null)).bytesRead > 0);
  } finally {
    await handle.close();
  }
}

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

await Promise.all([...inputs.map(readAll), writeAll()]);

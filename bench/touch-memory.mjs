// Touches BYTES bytes of fresh memory, 256 MiB at a time, then exits (spawned by bench/io-floor.ts).
// Plain JavaScript, so it starts without a loader.
//
//   node bench/touch-memory.mjs BYTES
const STEP = 256 << 20;
const total = Number(process.argv[2]);
const held = [];
for (let done = 0; done < total; done += STEP) {
  const buffer = Buffer.allocUnsafeSlow(Math.min(STEP, total - done));
  buffer.fill(1);
  held.push(buffer);
}

import { crc32Bytewise, createLaneHasher } from "./lane-hasher.js";

/**
 * The source of a hashing worker, run with `new Worker(source, { eval: true })`. Shipping source
 * text rather than a file path lets the same workers run from dist/ and from TypeScript under the
 * test runner. The worker hashes chunks of the shared ring buffer the main thread fills, in file
 * order, acknowledges each, and sends its digests when told the file is done.
 *
 * workerData: { streams, autoV3Start, ring: SharedArrayBuffer, blake3: Blake3Locations }
 * messages in: { type: "chunk", slot, start, length, fileOffset } | { type: "finish" }
 * messages out: { type: "done", slot } | { type: "digests", digests }
 */
export function hashWorkerSource(): string {
  return `"use strict";
const { parentPort, workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const zlib = require("node:zlib");
const createLaneHasher = ${createLaneHasher.toString()};
const crc32Bytewise = ${crc32Bytewise.toString()};

async function loadBlake3(locations) {
  if (locations.native) {
    try {
      const { Blake3Hasher } = require(locations.native);
      return () => {
        const hasher = new Blake3Hasher();
        return { update: (bytes) => hasher.update(bytes), digestHex: () => hasher.digest("hex") };
      };
    } catch {}
  }
  const { blake3 } = await import(locations.fallbackUrl);
  const toHex = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
  return () => {
    const hasher = blake3.create({});
    return { update: (bytes) => hasher.update(bytes), digestHex: () => toHex(hasher.digest()) };
  };
}

async function run() {
  const createBlake3 = workerData.streams.includes("blake3")
    ? await loadBlake3(workerData.blake3)
    : () => { throw new Error("blake3 is not in this lane"); };
  const lane = createLaneHasher(workerData.streams, workerData.autoV3Start, {
    createSha256: () => createHash("sha256"),
    crc32: typeof zlib.crc32 === "function" ? zlib.crc32 : crc32Bytewise,
    createBlake3,
  });
  const ring = new Uint8Array(workerData.ring);
  parentPort.on("message", (message) => {
    if (message.type === "chunk") {
      lane.update(ring.subarray(message.start, message.start + message.length), message.fileOffset);
      parentPort.postMessage({ type: "done", slot: message.slot });
    } else if (message.type === "finish") {
      parentPort.postMessage({ type: "digests", digests: lane.digest() });
    }
  });
}

run().catch((error) => {
  throw error;
});
`;
}

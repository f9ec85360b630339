import type { HashStream, RawDigests } from "./file-hashes.js";

/**
 * A lane is the set of streams one thread feeds. The two functions below are self-contained (no
 * imports, no outer names) because worker threads receive them as source text: see
 * hash-worker-source.ts. Keep them that way.
 */
export interface LaneDependencies {
  createSha256: () => { update(bytes: Uint8Array): unknown; digest(encoding: "hex"): string };
  crc32: (bytes: Uint8Array, value: number) => number;
  createBlake3: () => { update(bytes: Uint8Array): unknown; digestHex(): string };
}

export interface LaneHasher {
  /** Feeds the bytes found at `fileOffset`; chunks must arrive in file order. */
  update(bytes: Uint8Array, fileOffset: number): void;
  digest(): RawDigests;
}

export function createLaneHasher(
  streams: readonly HashStream[],
  autoV3Start: number,
  dependencies: LaneDependencies,
): LaneHasher {
  // Feeding every hasher the same small piece in turn keeps the piece in the CPU cache.
  const PIECE_BYTES = 256 * 1024;
  const sha256 = streams.includes("sha256") ? dependencies.createSha256() : undefined;
  const autov3 = streams.includes("autov3") ? dependencies.createSha256() : undefined;
  const blake3 = streams.includes("blake3") ? dependencies.createBlake3() : undefined;
  const hasCrc = streams.includes("crc32");
  let crc = 0;
  return {
    update(bytes, fileOffset) {
      for (let start = 0; start < bytes.byteLength; start += PIECE_BYTES) {
        const piece = bytes.subarray(start, start + PIECE_BYTES);
        const pieceOffset = fileOffset + start;
        sha256?.update(piece);
        if (autov3 && pieceOffset + piece.byteLength > autoV3Start) {
          autov3.update(piece.subarray(Math.max(0, autoV3Start - pieceOffset)));
        }
        blake3?.update(piece);
        if (hasCrc) crc = dependencies.crc32(piece, crc);
      }
    },
    digest() {
      const digests: RawDigests = {};
      if (sha256) digests.sha256 = sha256.digest("hex");
      if (autov3) digests.autov3 = autov3.digest("hex");
      if (blake3) digests.blake3 = blake3.digestHex();
      if (hasCrc) digests.crc32 = crc >>> 0;
      return digests;
    },
  };
}

/**
 * IEEE CRC-32, one byte at a time: the fallback for Node versions before 20.15, whose zlib lacks
 * `crc32` (about 0.4 GB/s instead of several).
 */
export function crc32Bytewise(bytes: Uint8Array, value: number): number {
  const table = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c;
  }
  let crc = ~value;
  for (let i = 0; i < bytes.byteLength; i++) crc = table[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

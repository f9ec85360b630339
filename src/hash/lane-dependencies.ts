import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import * as zlib from "node:zlib";
import { blake3 as nobleBlake3 } from "@noble/hashes/blake3.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { crc32Bytewise, type LaneDependencies } from "./lane-hasher.js";

const require = createRequire(import.meta.url);

/**
 * Native BLAKE3 (Rust, SIMD; ≈5 GB/s here against ≈0.5 GB/s for WASM builds). Its binaries come as
 * per-platform registry packages; where none fits, the audited pure-JS @noble/hashes takes over.
 */
const BLAKE3_NATIVE_MODULE = "@napi-rs/blake-hash";
const BLAKE3_FALLBACK_MODULE = "@noble/hashes/blake3.js";

interface NativeBlake3Module {
  Blake3Hasher: new () => { update(bytes: Uint8Array): unknown; digest(format: "hex"): string };
}

/** Absolute locations of the BLAKE3 modules, for worker threads (which resolve from elsewhere). */
export interface Blake3Locations {
  native: string | null;
  fallbackUrl: string;
}

export function blake3Locations(): Blake3Locations {
  let native: string | null = null;
  try {
    native = require.resolve(BLAKE3_NATIVE_MODULE);
  } catch {}
  return { native, fallbackUrl: pathToFileURL(require.resolve(BLAKE3_FALLBACK_MODULE)).href };
}

let nativeBlake3: NativeBlake3Module | null | undefined;

function loadNativeBlake3(): NativeBlake3Module | null {
  if (nativeBlake3 === undefined) {
    try {
      nativeBlake3 = require(BLAKE3_NATIVE_MODULE) as NativeBlake3Module;
    } catch {
      nativeBlake3 = null;
    }
  }
  return nativeBlake3;
}

/** Which BLAKE3 implementation this process uses (reported by the benchmark). */
export function blake3Implementation(): "native" | "javascript" {
  return loadNativeBlake3() ? "native" : "javascript";
}

/** The hashers of the current thread, for passes that run without workers. */
export function laneDependencies(options: { forceJavaScriptBlake3?: boolean } = {}): LaneDependencies {
  const native = options.forceJavaScriptBlake3 ? null : loadNativeBlake3();
  return {
    createSha256: () => createHash("sha256"),
    crc32: typeof zlib.crc32 === "function" ? zlib.crc32 : crc32Bytewise,
    createBlake3: native
      ? () => {
          const hasher = new native.Blake3Hasher();
          return { update: (bytes) => hasher.update(bytes), digestHex: () => hasher.digest("hex") };
        }
      : () => {
          const hasher = nobleBlake3.create({});
          return { update: (bytes) => hasher.update(bytes), digestHex: () => bytesToHex(hasher.digest()) };
        },
  };
}

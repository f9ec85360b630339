/**
 * Counter-based random numbers: the value for (seed, key, element index) is a pure function of the
 * three, so a tensor merged in ranges, in any order, on any machine, gives the same draws.
 * Mixing is murmur3's fmix32 over the words, a well-studied avalanche function.
 */

const TWO_POW_32 = 4294967296;

function fmix32(h: number): number {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function mix(state: number, word: number): number {
  return fmix32((state ^ Math.imul(word >>> 0, 0x9e3779b1)) + 0x6a09e667);
}

/** FNV-1a over the UTF-16 code units of the key: one 32-bit word per tensor. */
export function keyHash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A uniform number in [0, 1) for one element; `seed` and `index` may be any safe integers ≥ 0. */
export function counterUniform(seed: number, key: number, index: number): number {
  return counterStream(seed, key)(index);
}

/** `counterUniform` with (seed, key) mixed once: the per-element cost is two mixing rounds. */
export function counterStream(seed: number, key: number): (index: number) => number {
  let prefix = mix(0x243f6a88, seed % TWO_POW_32);
  prefix = mix(prefix, Math.floor(seed / TWO_POW_32));
  prefix = mix(prefix, key);
  return (index) => {
    const state = mix(mix(prefix, index % TWO_POW_32), Math.floor(index / TWO_POW_32));
    return fmix32(state) / TWO_POW_32;
  };
}

/**
 * The hot loop of `recover`, ⟨y, d⟩, ‖d‖², ‖y‖² with y = m − a and d = b − c, as a tiny
 * WebAssembly SIMD function: about 4× faster than the same loop in JavaScript, which would
 * otherwise cost more than reading the files (bench/recover.ts).
 *
 * Four lanes accumulate in f32 over runs of RUN_ELEMENTS, then JavaScript adds each run's lane sums
 * into float64: a run's f32 rounding (≲ RUN_ELEMENTS/4 × 2⁻²⁴ relative) stays far below the 1e-3 the
 * recovered weights need, and the float64 totals do not drift with model size.
 *
 * The module is written out byte by byte below (WebAssembly binary format 1.0 + SIMD, no toolchain):
 *   (func $sums (param $m i32) (param $a i32) (param $b i32) (param $c i32) (param $end i32)
 *     (local $dot v128) (local $dd v128) (local $yy v128) (local $y v128) (local $d v128)
 *     (block (loop
 *       (br_if 1 (i32.ge_u (local.get $m) (local.get $end)))
 *       (local.set $y (f32x4.sub (v128.load (local.get $m)) (v128.load (local.get $a))))
 *       (local.set $d (f32x4.sub (v128.load (local.get $b)) (v128.load (local.get $c))))
 *       (local.set $dot (f32x4.add (local.get $dot) (f32x4.mul (local.get $y) (local.get $d))))
 *       (local.set $dd (f32x4.add (local.get $dd) (f32x4.mul (local.get $d) (local.get $d))))
 *       (local.set $yy (f32x4.add (local.get $yy) (f32x4.mul (local.get $y) (local.get $y))))
 *       ;; m, a, b, c += 16 bytes
 *       (br 0)))
 *     (v128.store offset=0 (i32.const 0) (local.get $dot))
 *     (v128.store offset=16 (i32.const 0) (local.get $dd))
 *     (v128.store offset=32 (i32.const 0) (local.get $yy)))
 */

/** Elements per SIMD call: short enough for f32 lane sums to stay exact to ~1e-5. */
const RUN_ELEMENTS = 1024;
/** Bytes at the start of memory where the function leaves its 3 × 4 lane sums. */
const SCRATCH_BYTES = 64;
const PAGE_BYTES = 65536;

const SIMD = 0xfd;
const V128_LOAD = [SIMD, 0x00, 0x02, 0x00]; // align 2^2, offset 0
const F32X4_ADD = [SIMD, 0xe4, 0x01];
const F32X4_SUB = [SIMD, 0xe5, 0x01];
const F32X4_MUL = [SIMD, 0xe6, 0x01];
const get = (index: number) => [0x20, index];
const set = (index: number) => [0x21, index];
const [M, A, B, C, END, DOT, DD, YY, Y, D] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] as const;
const advance = (index: number) => [...get(index), 0x41, 16, 0x6a, ...set(index)]; // index += 16
const store = (offset: number, local: number) => [0x41, 0x00, ...get(local), SIMD, 0x0b, 0x02, offset];
const accumulate = (acc: number, x: number, y: number) => [
  ...get(acc),
  ...get(x),
  ...get(y),
  ...F32X4_MUL,
  ...F32X4_ADD,
  ...set(acc),
];

const BODY = [
  0x01,
  0x05,
  0x7b, // 5 locals of type v128
  0x02,
  0x40,
  0x03,
  0x40, // block, loop
  ...get(M),
  ...get(END),
  0x4f,
  0x0d,
  0x01, // br_if 1 (m >= end)
  ...get(M),
  ...V128_LOAD,
  ...get(A),
  ...V128_LOAD,
  ...F32X4_SUB,
  ...set(Y),
  ...get(B),
  ...V128_LOAD,
  ...get(C),
  ...V128_LOAD,
  ...F32X4_SUB,
  ...set(D),
  ...accumulate(DOT, Y, D),
  ...accumulate(DD, D, D),
  ...accumulate(YY, Y, Y),
  ...advance(M),
  ...advance(A),
  ...advance(B),
  ...advance(C),
  0x0c,
  0x00,
  0x0b,
  0x0b, // br 0, end loop, end block
  ...store(0, DOT),
  ...store(16, DD),
  ...store(32, YY),
  0x0b,
];

const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
const name = (text: string) => [text.length, ...Array.from(text, (ch) => ch.charCodeAt(0))];

function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

const MODULE_BYTES = new Uint8Array([
  0x00,
  0x61,
  0x73,
  0x6d,
  0x01,
  0x00,
  0x00,
  0x00, // \0asm, version 1
  ...section(1, [0x01, 0x60, 0x05, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x00]), // type: (i32 ×5) → ()
  ...section(3, [0x01, 0x00]), // function 0 has type 0
  ...section(5, [0x01, 0x00, 0x01]), // one memory, at least 1 page
  ...section(7, [0x02, ...name("sums"), 0x00, 0x00, ...name("memory"), 0x02, 0x00]),
  ...section(10, [0x01, ...uleb(BODY.length), ...BODY]),
]);

/** The parts of the WebAssembly JS API used here (the project's TypeScript libs do not declare the global). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

/** Computes the three sums over f32 arrays that live in its own memory (see `allocate`). */
export interface SimdSums {
  /** A Float32Array inside the module's memory; call before `sums`, all at once (growing memory later would detach them). */
  allocate(lengths: readonly number[]): Float32Array[];
  /** [⟨m − a, b − c⟩, ‖b − c‖², ‖m − a‖²] in float64 totals; arrays from `allocate`, same length. */
  sums(m: Float32Array, a: Float32Array, b: Float32Array, c: Float32Array): [number, number, number];
}

/** The SIMD sums, or null where WebAssembly SIMD is unavailable (callers keep a JavaScript loop). */
export function createSimdSums(): SimdSums | null {
  if (!wasmApi?.validate(MODULE_BYTES)) return null;
  const instance = new wasmApi.Instance(new wasmApi.Module(MODULE_BYTES));
  const memory = instance.exports.memory as WasmMemory;
  const run = instance.exports.sums as (m: number, a: number, b: number, c: number, end: number) => void;
  let lanes = new Float32Array(memory.buffer, 0, 12);
  return {
    allocate(lengths) {
      const total = SCRATCH_BYTES + lengths.reduce((sum, length) => sum + length * 4, 0);
      const have = memory.buffer.byteLength;
      if (total > have) memory.grow(Math.ceil((total - have) / PAGE_BYTES));
      lanes = new Float32Array(memory.buffer, 0, 12);
      let offset = SCRATCH_BYTES;
      return lengths.map((length) => {
        const view = new Float32Array(memory.buffer, offset, length);
        offset += length * 4;
        return view;
      });
    },
    sums(m, a, b, c) {
      let dot = 0;
      let direction = 0;
      let change = 0;
      const vectorEnd = m.length - (m.length % 4);
      for (let begin = 0; begin < vectorEnd; begin += RUN_ELEMENTS) {
        const end = Math.min(vectorEnd, begin + RUN_ELEMENTS);
        run(
          m.byteOffset + begin * 4,
          a.byteOffset + begin * 4,
          b.byteOffset + begin * 4,
          c.byteOffset + begin * 4,
          m.byteOffset + end * 4,
        );
        dot += lanes[0]! + lanes[1]! + lanes[2]! + lanes[3]!;
        direction += lanes[4]! + lanes[5]! + lanes[6]! + lanes[7]!;
        change += lanes[8]! + lanes[9]! + lanes[10]! + lanes[11]!;
      }
      for (let i = vectorEnd; i < m.length; i++) {
        const y = m[i]! - a[i]!;
        const d = b[i]! - c[i]!;
        dot += y * d;
        direction += d * d;
        change += y * y;
      }
      return [dot, direction, change];
    },
  };
}

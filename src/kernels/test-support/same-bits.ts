import { expect } from "vitest";

/** Asserts two buffers hold the same bytes; on failure names the first differing elements. */
export function expectSameBits(
  actual: Uint8Array | Float32Array,
  expected: Uint8Array | Float32Array,
  elementBytes: number,
  context: string,
): void {
  const left = asBytes(actual);
  const right = asBytes(expected);
  expect(left.byteLength, `${context}: byte length`).toBe(right.byteLength);
  const differences: string[] = [];
  for (let i = 0; i < left.byteLength && differences.length < 5; i += elementBytes) {
    for (let j = 0; j < elementBytes; j++) {
      if (left[i + j] !== right[i + j]) {
        differences.push(
          `element ${i / elementBytes}: got ${word(left, i, elementBytes)}, expected ${word(right, i, elementBytes)}`,
        );
        break;
      }
    }
  }
  expect(differences, context).toEqual([]);
}

function asBytes(values: Uint8Array | Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function word(bytes: Uint8Array, offset: number, size: number): string {
  let text = "";
  for (let j = size - 1; j >= 0; j--) text += bytes[offset + j]!.toString(16).padStart(2, "0");
  return `0x${text}`;
}

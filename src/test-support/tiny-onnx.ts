/**
 * Writes tiny ONNX models for the ONNX scorer's tests with a minimal protobuf encoder (only the
 * fields of onnx.proto they need), so the tests need no Python, no onnx package and no download.
 *
 * `linearHeadModel` is a LAION-aesthetic-shaped toy: image [batch, 3, H, W] → GlobalAveragePool →
 * Flatten → Gemm with weights [3, 1] and bias [1] → score [batch, 1]. Its "embedding" is the mean
 * of each channel, so the expected score of an image is computed by hand in the test.
 */
function varint(value: number): number[] {
  const out: number[] = [];
  let v = BigInt(value);
  if (v < 0n) v += 1n << 64n;
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

const key = (field: number, wire: number) => varint((field << 3) | wire);
const int = (field: number, value: number) => [...key(field, 0), ...varint(value)];
const bytes = (field: number, data: Uint8Array | number[]) => [
  ...key(field, 2),
  ...varint(data.length),
  ...data,
];
const str = (field: number, text: string) => bytes(field, [...Buffer.from(text, "utf8")]);

const FLOAT = 1;

function valueInfo(name: string, dims: (number | string)[]): number[] {
  const shape = dims.flatMap((d) => bytes(1, typeof d === "number" ? int(1, d) : str(2, d)));
  const tensorType = [...int(1, FLOAT), ...bytes(2, shape)];
  return [...str(1, name), ...bytes(2, bytes(1, tensorType))];
}

function initializer(name: string, dims: number[], values: number[]): number[] {
  const raw = Buffer.from(new Float32Array(values).buffer);
  return [...dims.flatMap((d) => int(1, d)), ...int(2, FLOAT), ...str(8, name), ...bytes(9, [...raw])];
}

function node(op: string, inputs: string[], outputs: string[], attributes: number[][] = []): number[] {
  return [
    ...inputs.flatMap((i) => str(1, i)),
    ...outputs.flatMap((o) => str(2, o)),
    ...str(4, op),
    ...attributes.flatMap((a) => bytes(5, a)),
  ];
}

const intAttribute = (name: string, value: number) => [...str(1, name), ...int(3, value), ...int(20, 2)];

export function linearHeadModel(options: {
  size: number;
  weights: [number, number, number];
  bias: number;
}): Buffer {
  const graph = [
    ...bytes(1, node("GlobalAveragePool", ["image"], ["pooled"])),
    ...bytes(1, node("Flatten", ["pooled"], ["embedding"], [intAttribute("axis", 1)])),
    ...bytes(1, node("Gemm", ["embedding", "head.weight", "head.bias"], ["score"])),
    ...str(2, "linear-head"),
    ...bytes(5, initializer("head.weight", [3, 1], options.weights)),
    ...bytes(5, initializer("head.bias", [1], [options.bias])),
    ...bytes(11, valueInfo("image", ["batch", 3, options.size, options.size])),
    ...bytes(12, valueInfo("score", ["batch", 1])),
  ];
  const model = [
    ...int(1, 8),
    ...str(2, "gyoza-test"),
    ...bytes(7, graph),
    ...bytes(8, [...str(1, ""), ...int(2, 13)]),
  ];
  return Buffer.from(model);
}

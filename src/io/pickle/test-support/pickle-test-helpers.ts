import { expect } from "vitest";
import { GyozaError, type GyozaErrorCode } from "../../../errors.js";
import { BufferByteSource } from "../../byte-source.js";
import { interpretPickle } from "../interpret-pickle.js";
import { PickleWriter } from "../pickle-writer.js";

/** Test support: run pickles built in code and check how they are refused. */
export const run = (w: PickleWriter) => interpretPickle(new BufferByteSource(w.bytes(), "test.pkl"));
export const start = () => new PickleWriter().proto(2);

export async function rejection(w: PickleWriter): Promise<GyozaError> {
  const error = await run(w).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(GyozaError);
  return error as GyozaError;
}

export async function expectRejected(w: PickleWriter, code: GyozaErrorCode, message: RegExp): Promise<void> {
  const error = await rejection(w);
  expect(error.code).toBe(code);
  expect(error.message).toMatch(message);
}

/** `('storage', torch.FloatStorage, key, 'cpu', numel)` BINPERSID, then _rebuild_tensor_v2(...). */
export function tensorOps(
  w: PickleWriter,
  key: string,
  numel: number,
  shape: number[],
  stride: number[],
  offset = 0,
): PickleWriter {
  w.global("torch._utils", "_rebuild_tensor_v2").mark();
  w.mark()
    .string("storage")
    .global("torch", "FloatStorage")
    .string(key)
    .string("cpu")
    .int(numel)
    .tuple()
    .binPersId();
  w.int(offset).mark();
  for (const d of shape) w.int(d);
  w.tuple().mark();
  for (const s of stride) w.int(s);
  w.tuple().bool(false).global("collections", "OrderedDict").emptyTuple().reduce().tuple().reduce();
  return w;
}

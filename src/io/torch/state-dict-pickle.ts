import { DTYPES, type DType } from "../dtype.js";
import { PickleWriter } from "../pickle/index.js";
import { contiguousStrides } from "../read-tensor.js";

/** Pickle batches dict items in groups of this many (pickle's _BATCHSIZE). */
const PICKLE_BATCH_SIZE = 1000;

/** A tensor as the pickle names it: its own storage, `storageKey`, of `byteLength` bytes. */
export interface PickledTensor {
  readonly key: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly storageKey: string;
  readonly byteLength: number;
}

/** The pickle torch.save writes for `{"state_dict": OrderedDict(...)}`, memoized like Python's pickler. */
export function stateDictPickle(tensors: readonly PickledTensor[]): Uint8Array {
  const w = new PickleWriter().proto(2);
  w.emptyDict();
  w.put();
  w.string("state_dict");
  w.put();
  w.global("collections", "OrderedDict");
  const orderedDict = w.put();
  w.emptyTuple().reduce();
  w.put();
  const memo = new Map<string, number>();
  const memoized = (id: string, emit: () => void) => {
    const index = memo.get(id);
    if (index !== undefined) w.get(index);
    else {
      emit();
      memo.set(id, w.put());
    }
  };
  const intTuple = (values: readonly number[]) => {
    if (values.length === 0) return void w.emptyTuple();
    if (values.length > 3) w.mark();
    for (const value of values) w.int(value);
    if (values.length === 1) w.tuple1();
    else if (values.length === 2) w.tuple2();
    else if (values.length === 3) w.tuple3();
    else w.tuple();
    w.put();
  };
  for (let start = 0; start < tensors.length; start += PICKLE_BATCH_SIZE) {
    const batch = tensors.slice(start, start + PICKLE_BATCH_SIZE);
    if (batch.length > 1) w.mark();
    for (const tensor of batch) {
      w.string(tensor.key);
      w.put();
      memoized("rebuild", () => w.global("torch._utils", "_rebuild_tensor_v2"));
      w.mark();
      w.mark();
      memoized("s:storage", () => w.string("storage"));
      const storageType = DTYPES[tensor.dtype].torchStorage!;
      memoized(`g:${storageType}`, () => w.global("torch", storageType));
      w.string(tensor.storageKey);
      w.put();
      memoized("s:cpu", () => w.string("cpu"));
      w.int(tensor.byteLength / DTYPES[tensor.dtype].bytes);
      w.tuple();
      w.put();
      w.binPersId();
      w.int(0);
      intTuple(tensor.shape);
      intTuple(contiguousStrides(tensor.shape));
      w.bool(false);
      w.get(orderedDict).emptyTuple().reduce();
      w.put();
      w.tuple();
      w.put();
      w.reduce();
      w.put();
    }
    w.raw(batch.length > 1 ? 0x75 : 0x73); // SETITEMS / SETITEM
  }
  w.setItem();
  return w.stop().bytes();
}

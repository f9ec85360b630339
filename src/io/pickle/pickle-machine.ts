import type { Fail } from "./allowlist.js";
import { MAX_CONTAINER_ENTRIES, MAX_MARK_DEPTH, MAX_MEMO_ENTRIES, MAX_STACK_DEPTH } from "./limits.js";
import { PickleDict, PickleList, type PickleValue, type TorchStorageRef } from "./values.js";

/**
 * The pickle virtual machine's state: value stack, MARK positions and memo, with every growth
 * bounded. Values below the innermost MARK cannot be popped, as in CPython's unpickler.
 */
export class PickleMachine {
  readonly stack: PickleValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PickleValue>();

  constructor(private readonly fail: Fail) {}

  push(value: PickleValue): void {
    if (this.stack.length >= MAX_STACK_DEPTH)
      throw this.fail("limit", `stack deeper than ${MAX_STACK_DEPTH}`);
    this.stack.push(value);
  }

  pop(): PickleValue {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) throw this.fail("format", "stack underflow");
    return this.stack.pop()!;
  }

  top(): PickleValue {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) throw this.fail("format", "stack underflow");
    return this.stack[this.stack.length - 1]!;
  }

  mark(): void {
    if (this.marks.length >= MAX_MARK_DEPTH)
      throw this.fail("limit", `MARKs nested deeper than ${MAX_MARK_DEPTH}`);
    this.marks.push(this.stack.length);
  }

  /** Everything above the innermost MARK, removing the mark. */
  popMark(): PickleValue[] {
    const mark = this.marks.pop();
    if (mark === undefined) throw this.fail("format", "no MARK to close");
    const items = this.stack.splice(mark);
    if (items.length > MAX_CONTAINER_ENTRIES)
      throw this.fail("limit", `more than ${MAX_CONTAINER_ENTRIES} items`);
    return items;
  }

  /** True when STOP may end the pickle: one value, no open MARK. */
  get balanced(): boolean {
    return this.marks.length === 0 && this.stack.length === 1;
  }

  get memoSize(): number {
    return this.memo.size;
  }

  memoPut(index: number): void {
    if (!this.memo.has(index) && this.memo.size >= MAX_MEMO_ENTRIES) {
      throw this.fail("limit", `memo larger than ${MAX_MEMO_ENTRIES} entries`);
    }
    this.memo.set(index, this.top());
  }

  memoGet(index: number): void {
    const value = this.memo.get(index);
    if (value === undefined) throw this.fail("format", `memo entry ${index} was never stored`);
    this.push(value);
  }

  setItems(target: PickleValue, items: PickleValue[]): void {
    if (!(target instanceof PickleDict)) throw this.fail("format", "SETITEM on a non-dict");
    if (items.length % 2 !== 0) throw this.fail("format", "odd number of items for a dict");
    for (let i = 0; i < items.length; i += 2) target.entries.set(items[i]!, items[i + 1]!);
    if (target.entries.size > MAX_CONTAINER_ENTRIES) throw this.fail("limit", "dict too large");
  }

  appendItems(target: PickleValue, items: PickleValue[]): void {
    if (!(target instanceof PickleList)) throw this.fail("format", "APPEND on a non-list");
    if (target.items.length + items.length > MAX_CONTAINER_ENTRIES)
      throw this.fail("limit", "list too large");
    for (const item of items) target.items.push(item);
  }
}

/** The same key must always name the same storage. */
export function registerStorage(
  storages: Map<string, TorchStorageRef>,
  storage: TorchStorageRef,
  fail: Fail,
): TorchStorageRef {
  const known = storages.get(storage.key);
  if (!known) {
    storages.set(storage.key, storage);
    return storage;
  }
  if (known.dtype !== storage.dtype || known.numel !== storage.numel) {
    throw fail("format", `storage ${storage.key} is declared twice with different dtype or size`);
  }
  return known;
}

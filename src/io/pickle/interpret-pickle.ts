import { GyozaError, type GyozaErrorCode } from "../../errors.js";
import type { ByteSource } from "../byte-source.js";
import { applyBuild, applyReduce, type Fail, persistentLoad, resolveGlobal, smallest } from "./allowlist.js";
import { ByteCursor } from "./byte-cursor.js";
import {
  MAX_CONTAINER_ENTRIES,
  MAX_GLOBAL_NAME_BYTES,
  MAX_LONG_BYTES,
  MAX_MARK_DEPTH,
  MAX_MEMO_ENTRIES,
  MAX_STACK_DEPTH,
  MAX_STRING_BYTES,
} from "./limits.js";
import { CALLING_OPCODES, describeOpcode, OPCODE_NAMES } from "./opcodes.js";
import {
  PickleDict,
  PickleGlobal,
  PickleList,
  PickleTuple,
  type PickleValue,
  type TorchStorageRef,
} from "./values.js";

export interface PickleResult {
  readonly value: PickleValue;
  /** Offset just after STOP (the next pickle of a legacy file starts there). */
  readonly endOffset: number;
  /** `module.name` of every GLOBAL / STACK_GLOBAL, in order of first use. */
  readonly globals: ReadonlySet<string>;
  /** pickletools names of the opcodes seen. */
  readonly opcodes: ReadonlySet<string>;
  /** Storages named by persistent ids, by key, in order of first use. */
  readonly storages: ReadonlyMap<string, TorchStorageRef>;
}

/** Opcode byte plus the longest fixed-size argument (FRAME, BINUNICODE8 lengths). */
const FIXED_ARGUMENT_BYTES = 9;

/** Opcodes that are never written by torch.save but are harmless to interpret. */
const PROTOCOL_0_NAMES = new Set(["STRING"]);

/**
 * Interprets one pickle without executing it: only the opcodes torch checkpoints need, only the
 * allowlisted globals (see allowlist.ts), no recursion, every length checked against the bytes
 * that remain. Anything else is a GyozaError naming the opcode and its byte offset.
 */
export async function interpretPickle(source: ByteSource, start = 0): Promise<PickleResult> {
  const cursor = new ByteCursor(source, start);
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  const globals = new Set<string>();
  const opcodes = new Set<string>();
  const storages = new Map<string, TorchStorageRef>();
  let opcodeOffset = start;
  let opcodeName = "";

  const fail: Fail = (code: GyozaErrorCode, message: string) =>
    new GyozaError(code, `${message} (${opcodeName} at byte ${opcodeOffset})`, { file: source.name });
  const what = () => `${opcodeName} at byte ${opcodeOffset}`;

  const push = (value: PickleValue) => {
    if (stack.length >= MAX_STACK_DEPTH) throw fail("limit", `stack deeper than ${MAX_STACK_DEPTH}`);
    stack.push(value);
  };
  const pop = (): PickleValue => {
    if (stack.length <= (marks.at(-1) ?? 0)) throw fail("format", "stack underflow");
    return stack.pop()!;
  };
  const top = (): PickleValue => {
    if (stack.length <= (marks.at(-1) ?? 0)) throw fail("format", "stack underflow");
    return stack[stack.length - 1]!;
  };
  const popMark = (): PickleValue[] => {
    const mark = marks.pop();
    if (mark === undefined) throw fail("format", "no MARK to close");
    const items = stack.splice(mark);
    if (items.length > MAX_CONTAINER_ENTRIES) throw fail("limit", `more than ${MAX_CONTAINER_ENTRIES} items`);
    return items;
  };
  const memoPut = (index: number) => {
    if (!memo.has(index) && memo.size >= MAX_MEMO_ENTRIES) {
      throw fail("limit", `memo larger than ${MAX_MEMO_ENTRIES} entries`);
    }
    memo.set(index, top());
  };
  const memoGet = (index: number) => {
    const value = memo.get(index);
    if (value === undefined) throw fail("format", `memo entry ${index} was never stored`);
    push(value);
  };
  const sized = async (length: number | bigint): Promise<number> => {
    if (length < 0) throw fail("format", `declares a negative length ${length}`);
    if (length > cursor.remaining) {
      throw fail("format", `declares ${length} bytes but only ${cursor.remaining} remain`);
    }
    if (length > MAX_STRING_BYTES) {
      throw fail("limit", `declares ${length} bytes, over the ${MAX_STRING_BYTES}-byte limit`);
    }
    const n = Number(length);
    if (cursor.available < n) await cursor.fill(n, what());
    return n;
  };
  const need = (n: number) => {
    if (cursor.available < n) {
      throw fail("format", `pickle truncated: needs ${n} bytes but only ${cursor.available} remain`);
    }
  };
  const useGlobal = (module: string, name: string) => {
    const qualified = `${module}.${name}`;
    globals.add(qualified);
    push(resolveGlobal(qualified, fail));
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof PickleDict)) throw fail("format", "SETITEM on a non-dict");
    if (items.length % 2 !== 0) throw fail("format", "odd number of items for a dict");
    for (let i = 0; i < items.length; i += 2) target.entries.set(items[i]!, items[i + 1]!);
    if (target.entries.size > MAX_CONTAINER_ENTRIES) throw fail("limit", "dict too large");
  };
  const appendItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof PickleList)) throw fail("format", "APPEND on a non-list");
    if (target.items.length + items.length > MAX_CONTAINER_ENTRIES) throw fail("limit", "list too large");
    for (const item of items) target.items.push(item);
  };

  for (;;) {
    opcodeOffset = cursor.position;
    opcodeName = "end of data";
    // One refill check per opcode covers the opcode and any fixed-size argument (at most 8 bytes).
    if (cursor.available < FIXED_ARGUMENT_BYTES) {
      await cursor.fill(Math.min(FIXED_ARGUMENT_BYTES, cursor.remaining) || 1, "next opcode");
    }
    const code = cursor.u8();
    const name = OPCODE_NAMES.get(code);
    opcodeName = name ?? describeOpcode(code);
    if (!name) throw fail("format", `invalid pickle opcode ${describeOpcode(code)}`);
    opcodes.add(name);
    switch (name) {
      case "PROTO": {
        need(1);
        const protocol = cursor.u8();
        if (protocol > 5) throw fail("format", `unsupported pickle protocol ${protocol}`);
        break;
      }
      case "FRAME": {
        need(8);
        const length = cursor.u64();
        if (length > BigInt(cursor.remaining))
          throw fail("format", `frame of ${length} bytes runs past the end`);
        break;
      }
      case "STOP": {
        if (marks.length > 0 || stack.length !== 1) throw fail("format", "STOP with an unbalanced stack");
        return { value: stack[0]!, endOffset: cursor.position, globals, opcodes, storages };
      }
      case "MARK":
        if (marks.length >= MAX_MARK_DEPTH) throw fail("limit", `MARKs nested deeper than ${MAX_MARK_DEPTH}`);
        marks.push(stack.length);
        break;
      case "EMPTY_DICT":
        push(new PickleDict());
        break;
      case "EMPTY_LIST":
        push(new PickleList());
        break;
      case "EMPTY_TUPLE":
        push(new PickleTuple([]));
        break;
      case "NONE":
        push(null);
        break;
      case "NEWTRUE":
        push(true);
        break;
      case "NEWFALSE":
        push(false);
        break;
      case "BINPUT":
        need(1);
        memoPut(cursor.u8());
        break;
      case "LONG_BINPUT":
        need(4);
        memoPut(cursor.u32());
        break;
      case "MEMOIZE":
        memoPut(memo.size);
        break;
      case "BINGET":
        need(1);
        memoGet(cursor.u8());
        break;
      case "LONG_BINGET":
        need(4);
        memoGet(cursor.u32());
        break;
      case "BININT1":
        need(1);
        push(cursor.u8());
        break;
      case "BININT2":
        need(2);
        push(cursor.u16());
        break;
      case "BININT":
        need(4);
        push(cursor.i32());
        break;
      case "LONG1":
      case "LONG4": {
        need(name === "LONG1" ? 1 : 4);
        const length = name === "LONG1" ? cursor.u8() : cursor.i32();
        if (length < 0 || length > MAX_LONG_BYTES) {
          throw fail("limit", `integer of ${length} bytes, over the ${MAX_LONG_BYTES}-byte limit`);
        }
        await sized(length);
        push(decodeLong(cursor.bytes(length)));
        break;
      }
      case "BINFLOAT":
        need(8);
        push(cursor.f64BigEndian());
        break;
      case "SHORT_BINUNICODE":
        need(1);
        push(cursor.utf8(await sized(cursor.u8()), what));
        break;
      case "BINUNICODE":
        need(4);
        push(cursor.utf8(await sized(cursor.u32()), what));
        break;
      case "BINUNICODE8":
        need(8);
        push(cursor.utf8(await sized(cursor.u64()), what));
        break;
      case "SHORT_BINSTRING":
        need(1);
        push(cursor.utf8(await sized(cursor.u8()), what));
        break;
      case "BINSTRING":
        need(4);
        push(cursor.utf8(await sized(cursor.i32()), what));
        break;
      case "SHORT_BINBYTES":
        need(1);
        push(cursor.bytes(await sized(cursor.u8())));
        break;
      case "BINBYTES":
        need(4);
        push(cursor.bytes(await sized(cursor.u32())));
        break;
      case "BINBYTES8":
        need(8);
        push(cursor.bytes(await sized(cursor.u64())));
        break;
      case "STRING":
        push(parseQuotedString(await cursor.line(MAX_STRING_BYTES, what()), fail));
        break;
      case "TUPLE":
        push(new PickleTuple(popMark()));
        break;
      case "TUPLE1":
      case "TUPLE2":
      case "TUPLE3": {
        const count = name === "TUPLE1" ? 1 : name === "TUPLE2" ? 2 : 3;
        const items = new Array<PickleValue>(count);
        for (let i = count - 1; i >= 0; i--) items[i] = pop();
        push(new PickleTuple(items));
        break;
      }
      case "LIST":
        push(new PickleList(popMark()));
        break;
      case "DICT": {
        const dict = new PickleDict();
        setItems(dict, popMark());
        push(dict);
        break;
      }
      case "APPEND": {
        const item = pop();
        appendItems(top(), [item]);
        break;
      }
      case "APPENDS": {
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case "SETITEM": {
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case "SETITEMS": {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case "GLOBAL": {
        const module = await cursor.line(MAX_GLOBAL_NAME_BYTES, what());
        useGlobal(module, await cursor.line(MAX_GLOBAL_NAME_BYTES, what()));
        break;
      }
      case "STACK_GLOBAL": {
        const globalName = pop();
        const module = pop();
        // Only literal strings: a name computed by a call (e.g. _codecs.encode) never reaches here as a str.
        if (typeof module !== "string" || typeof globalName !== "string") {
          throw fail("unsafe-pickle", "refusing STACK_GLOBAL whose module or name is not a literal string");
        }
        useGlobal(module, globalName);
        break;
      }
      case "REDUCE": {
        const args = pop();
        push(applyReduce(pop(), args, fail));
        break;
      }
      case "NEWOBJ": {
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PickleGlobal) || cls.qualifiedName !== "collections.OrderedDict") {
          throw fail("unsafe-pickle", "refusing NEWOBJ of anything but collections.OrderedDict");
        }
        push(applyReduce(cls, args, fail));
        break;
      }
      case "BUILD": {
        const state = pop();
        applyBuild(top(), state, fail);
        break;
      }
      case "BINPERSID": {
        const storage = persistentLoad(pop(), fail);
        push(registerStorage(storages, storage, fail));
        break;
      }
      case "INST": {
        const module = await cursor.line(MAX_GLOBAL_NAME_BYTES, what());
        const className = await cursor.line(MAX_GLOBAL_NAME_BYTES, what());
        globals.add(`${module}.${className}`);
        throw fail(
          "unsafe-pickle",
          `refusing INST of ${module}.${className}: pickles that instantiate classes are refused`,
        );
      }
      default:
        if (CALLING_OPCODES.has(name)) {
          throw fail("unsafe-pickle", `refusing opcode ${name}: it calls or instantiates objects`);
        }
        if (!PROTOCOL_0_NAMES.has(name)) throw fail("format", `unsupported pickle opcode ${name}`);
    }
  }
}

/** The same key must always name the same storage. */
function registerStorage(
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

/** Little-endian two's-complement integer (LONG1/LONG4). */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.byteLength === 0) return 0;
  let value = 0n;
  for (let i = bytes.byteLength - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.byteLength - 1]! & 0x80) value -= 1n << BigInt(bytes.byteLength * 8);
  return smallest(value);
}

/** Protocol-0 STRING: a quoted literal; escapes are not needed by checkpoints and are refused. */
function parseQuotedString(line: string, fail: Fail): string {
  const quote = line[0];
  if (line.length < 2 || (quote !== "'" && quote !== '"') || line.at(-1) !== quote) {
    throw fail("format", "STRING argument is not quoted");
  }
  const body = line.slice(1, -1);
  if (body.includes("\\")) throw fail("format", "STRING escapes are not supported");
  return body;
}

import { GyozaError, type GyozaErrorCode } from "../../errors.js";
import type { ByteSource } from "../byte-source.js";
import { applyBuild, applyReduce, type Fail, persistentLoad, resolveGlobal } from "./allowlist.js";
import { ByteCursor } from "./byte-cursor.js";
import { decodeLong, parseQuotedString } from "./decode-scalars.js";
import { MAX_GLOBAL_NAME_BYTES, MAX_LONG_BYTES, MAX_STRING_BYTES } from "./limits.js";
import { CALLING_OPCODES, describeOpcode, OPCODE_NAMES } from "./opcodes.js";
import { PickleMachine, registerStorage } from "./pickle-machine.js";
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
  const globals = new Set<string>();
  const opcodes = new Set<string>();
  const storages = new Map<string, TorchStorageRef>();
  let opcodeOffset = start;
  let opcodeName = "";

  const fail: Fail = (code: GyozaErrorCode, message: string) =>
    new GyozaError(code, `${message} (${opcodeName} at byte ${opcodeOffset})`, { file: source.name });
  const what = () => `${opcodeName} at byte ${opcodeOffset}`;
  const machine = new PickleMachine(fail);
  const push = (value: PickleValue) => machine.push(value);
  const pop = () => machine.pop();
  const top = () => machine.top();

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
        if (!machine.balanced) throw fail("format", "STOP with an unbalanced stack");
        return { value: machine.stack[0]!, endOffset: cursor.position, globals, opcodes, storages };
      }
      case "MARK":
        machine.mark();
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
        machine.memoPut(cursor.u8());
        break;
      case "LONG_BINPUT":
        need(4);
        machine.memoPut(cursor.u32());
        break;
      case "MEMOIZE":
        machine.memoPut(machine.memoSize);
        break;
      case "BINGET":
        need(1);
        machine.memoGet(cursor.u8());
        break;
      case "LONG_BINGET":
        need(4);
        machine.memoGet(cursor.u32());
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
        push(new PickleTuple(machine.popMark()));
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
        push(new PickleList(machine.popMark()));
        break;
      case "DICT": {
        const dict = new PickleDict();
        machine.setItems(dict, machine.popMark());
        push(dict);
        break;
      }
      case "APPEND": {
        const item = pop();
        machine.appendItems(top(), [item]);
        break;
      }
      case "APPENDS": {
        const items = machine.popMark();
        machine.appendItems(top(), items);
        break;
      }
      case "SETITEM": {
        const value = pop();
        const key = pop();
        machine.setItems(top(), [key, value]);
        break;
      }
      case "SETITEMS": {
        const items = machine.popMark();
        machine.setItems(top(), items);
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

import { GyozaError } from "../errors.js";
import { MERGED_LEAF_NAMES, UNET_PREFIX } from "./block-rules.js";
import {
  type BlockRule,
  blockLayoutOf,
  type Family,
  inputBlockCount,
  numberedSlotName,
  outputBlockCount,
  type Slot,
} from "./slots.js";

const INPUT_BLOCK = /\.input_blocks\.(\d+)\./;
const MIDDLE_BLOCK = /\.middle_block\.(\d+)\./;
const OUTPUT_BLOCK = /\.output_blocks\.(\d+)\./;

/** True when the tensor is a learned parameter that merges; false for buffers like `position_ids`. */
export function isMergedTensorKey(key: string): boolean {
  const leaf = key.slice(key.lastIndexOf(".") + 1);
  return MERGED_LEAF_NAMES.has(leaf);
}

/**
 * The block slot whose weight applies to `key`, or null when the tensor is not merged at all
 * (kept from A). Throws when a UNet block index does not exist in `family`: that is an
 * architecture mismatch, not a key to skip silently.
 */
export function slotOfKey(key: string, family: Family, rule: BlockRule = "classic"): Slot | null {
  if (!isMergedTensorKey(key)) return null;
  const data = blockLayoutOf(family).rules[rule]!;
  if (!key.startsWith(UNET_PREFIX)) {
    const match = data.outsideUnet.find((entry) => key.startsWith(entry.prefix));
    return match ? match.slot : "BASE";
  }
  for (const special of data.unetSpecial) {
    if (key.includes(special.contains)) return special.slot;
  }
  const input = INPUT_BLOCK.exec(key);
  if (input) return numberedSlot("IN", Number(input[1]), inputBlockCount(family), key, family);
  if (MIDDLE_BLOCK.test(key)) return "M00";
  const output = OUTPUT_BLOCK.exec(key);
  if (output) return numberedSlot("OUT", Number(output[1]), outputBlockCount(family), key, family);
  return "BASE";
}

function numberedSlot(prefix: "IN" | "OUT", index: number, count: number, key: string, family: Family): Slot {
  if (index >= count) {
    throw new GyozaError(
      "architecture-mismatch",
      `block index ${index} does not exist in ${family} (which has ${count} ${prefix === "IN" ? "input" : "output"} blocks)`,
      {
        path: key,
        fix: "check the family of the inputs: an SDXL key cannot be merged with SD 1.x block weights",
      },
    );
  }
  return numberedSlotName(prefix, index);
}

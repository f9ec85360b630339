export { BLOCK_LAYOUTS, type BlockLayout, type BlockRuleData } from "./block-layouts.js";
export { isMergedTensorKey, slotOfKey } from "./block-map.js";
export { blockSelectorNames, type ElementalOverride, elementalRemainder } from "./elemental.js";
export {
  checkLoraWeightsFit,
  FULL_LORA_WEIGHTS,
  type LoraBlockWeights,
  type LoraLayoutSize,
  type LoraWeightsOptions,
  loraBlockWeightOf,
  loraLayoutSlots,
  loraSlotOfKey,
  loraWeightPresets,
  parseLoraBlockWeights,
} from "./lora-block-weights.js";
export * from "./methods/index.js";
export { builtinPresets, findPreset, type Preset, type PresetTable, translateSd1ToSdxl } from "./presets.js";
export {
  BLOCK_RULES,
  type BlockRule,
  blockLayoutOf,
  FAMILIES,
  type Family,
  isFamily,
  type Slot,
  slotsOf,
  unetSlotsOf,
} from "./slots.js";
export { CURVE_NAMES, type CurveName, curveValues } from "./weight-curves.js";
export {
  alphaForKey,
  type KeyWeights,
  keyWeights,
  parseWeightArgument,
  type ResolveOptions,
  resolveWeights,
  type SlotWeights,
  type WeightSpec,
} from "./weights.js";

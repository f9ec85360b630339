export { isMergedTensorKey, slotOfKey } from "./block-map.js";
export { BLOCK_RULE_DATA, type BlockRuleData } from "./block-rules.js";
export { blockSelectorNames, type ElementalOverride, elementalRemainder } from "./elemental.js";
export * from "./methods/index.js";
export { builtinPresets, findPreset, type Preset, type PresetTable, translateSd1ToSdxl } from "./presets.js";
export {
  BLOCK_RULES,
  type BlockRule,
  FAMILIES,
  type Family,
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

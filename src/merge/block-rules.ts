import type { BlockRule, Family, Slot } from "./slots.js";

/**
 * The key → slot rules as data (DOMAIN.md §3 table). Adding a rule means adding an entry here and
 * a test row, not editing `slotOfKey`.
 */
export interface BlockRuleData {
  /** Where the rule comes from, for docs and `--help`. */
  readonly source: string;
  /**
   * Checked in order on UNet keys before the numbered blocks; the first match wins.
   * `LAST_OUT` is OUT11 for sd1 and OUT08 for sdxl.
   */
  readonly unetSpecial: readonly { readonly contains: string; readonly slot: Slot | "LAST_OUT" }[];
  /** Keys outside the UNet whose prefix sends them somewhere other than BASE, per family. */
  readonly outsideUnet: Readonly<Record<Family, readonly { readonly prefix: string; readonly slot: Slot }[]>>;
}

/** Every UNet key starts with this in LDM/SGM checkpoints. */
export const UNET_PREFIX = "model.diffusion_model.";

export const BLOCK_RULE_DATA: Readonly<Record<BlockRule, BlockRuleData>> = {
  // https://github.com/hako-mikan/sd-webui-supermerger/blob/main/scripts/mergers/mergers.py (blockid / weight_index)
  classic: {
    source: "original MBW tool, supermerger, meh",
    unetSpecial: [
      { contains: "time_embed", slot: "IN00" },
      { contains: "label_emb", slot: "IN00" },
      { contains: ".out.", slot: "LAST_OUT" },
    ],
    outsideUnet: { sd1: [], sdxl: [] },
  },
  // https://github.com/ljleb/sd-mecha (extensions/builtin/model_configs/*supermerger_blocks*)
  "sd-mecha": {
    source: "sd-mecha",
    unetSpecial: [
      { contains: "time_embed", slot: "BASE" },
      { contains: "label_emb", slot: "BASE" },
      { contains: ".out.", slot: "LAST_OUT" },
    ],
    outsideUnet: { sd1: [], sdxl: [{ prefix: "first_stage_model.", slot: "VAE" }] },
  },
};

/**
 * Leaf names of tensors that are learned parameters and therefore merged. DOMAIN.md §3 says
 * "weight/bias"; PyTorch's packed attention (`in_proj_weight`, `in_proj_bias`) and OpenCLIP's
 * `positional_embedding` / `text_projection` (SD 2.x, SDXL) are parameters under other names.
 * Buffers such as `position_ids`, `logit_scale`, scheduler tables and EMA copies are never merged.
 */
export const MERGED_LEAF_NAMES: ReadonlySet<string> = new Set([
  "weight",
  "bias",
  "in_proj_weight",
  "in_proj_bias",
  "positional_embedding",
  "text_projection",
]);

/** Every UNet key starts with this in LDM/SGM checkpoints. */
export const UNET_PREFIX = "model.diffusion_model.";

/**
 * Leaf names of tensors that are learned parameters and therefore merged. DOMAIN.md §3 says
 * "weight/bias"; PyTorch's packed attention (`in_proj_weight`, `in_proj_bias`) and OpenCLIP's
 * `positional_embedding` / `text_projection` (SD 2.x, SDXL) are parameters under other names.
 * Buffers such as `position_ids`, `logit_scale`, scheduler tables and EMA copies are never merged.
 * (The key → slot rules themselves are data in ./block-layouts.)
 */
export const MERGED_LEAF_NAMES: ReadonlySet<string> = new Set([
  "weight",
  "bias",
  "in_proj_weight",
  "in_proj_bias",
  "positional_embedding",
  "text_projection",
]);

import { z } from "zod";
import { BLOCK_RULES } from "../merge/index.js";
import { RECIPE_VERSION } from "./recipe-types.js";

/**
 * The structural schema of a recipe (zod). Weight specs stay `unknown` here: their shape depends
 * on the method and family, and `validateRecipe` checks them with precise paths and messages.
 */
const name = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, "names are letters, digits, _ and -, not starting with a digit");
const hex = (min: number, max: number) =>
  z
    .string()
    .regex(
      new RegExp(`^[0-9a-fA-F]{${min},${max}}$`),
      `expected ${min === max ? min : `${min}–${max}`} hex digits`,
    )
    .transform((value) => value.toLowerCase());

const weightSpec = z
  .unknown()
  .refine((value) => value !== undefined && value !== null, "a weight is required");

export const inputSchema = z.strictObject({
  path: z.string().min(1),
  sha256: hex(64, 64).optional(),
  autov3: hex(10, 64).optional(),
});

export const overrideSchema = z.strictObject({
  block: z.string().min(1),
  pattern: z.string(),
  value: z.number().finite(),
  param: z.string().optional(),
});

export const stepSchema = z.strictObject({
  method: z.string().min(1),
  inputs: z.record(z.string(), z.string().min(1)),
  alpha: weightSpec.optional(),
  beta: weightSpec.optional(),
  params: z.record(z.string(), weightSpec).optional(),
  block_rule: z.enum(BLOCK_RULES as ["classic", "sd-mecha"]).default("classic"),
  overrides: z.array(overrideSchema).optional(),
  arithmetic: z.enum(["fp32", "lerp"]).default("fp32"),
  seed: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
});

export const vaeSchema = z.strictObject({
  policy: z.enum(["keep-a", "take-b", "merge", "bake"]).default("keep-a"),
  slot: z.string().optional(),
  file: z.string().min(1).optional(),
});

export const outputSchema = z.strictObject({
  step: z.string().optional(),
  path: z.string().min(1),
  dtype: z.enum(["fp16", "bf16", "fp32"]).default("fp16"),
  prune: z.boolean().default(true),
  vae: vaeSchema.default({ policy: "keep-a" }),
  metadata: z.enum(["full", "hashes", "none"]).default("full"),
  title: z.string().optional(),
  description: z.string().optional(),
  author: z.string().optional(),
  license: z.string().optional(),
  tags: z.array(z.string()).optional(),
  clip_skip: z.number().int().min(1).max(12).optional(),
});

export const recipeSchema = z.strictObject({
  gyoza: z.literal(RECIPE_VERSION),
  inputs: z.record(name, inputSchema),
  steps: z.record(name, stepSchema),
  output: outputSchema,
});

/** Known keys per object kind, for "did you mean" on misspelt fields. */
export const KNOWN_KEYS = {
  recipe: Object.keys(recipeSchema.shape),
  input: Object.keys(inputSchema.shape),
  step: Object.keys(stepSchema.shape),
  override: Object.keys(overrideSchema.shape),
  output: Object.keys(outputSchema.shape),
  vae: Object.keys(vaeSchema.shape),
} as const;

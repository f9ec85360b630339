import { BLOCK_RULES } from "../merge/index.js";
import * as z from "../zod.js";
import { RECIPE_VERSION } from "./recipe-types.js";

/**
 * The structural schema of a recipe (zod). Weight specs stay `unknown` here: their shape depends
 * on the method and family, and `validateRecipe` checks them with precise paths and messages.
 */
const name = z
  .string()
  .check(
    z.regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, "names are letters, digits, _ and -, not starting with a digit"),
  );
const hex = (min: number, max: number) =>
  z.pipe(
    z
      .string()
      .check(
        z.regex(
          new RegExp(`^[0-9a-fA-F]{${min},${max}}$`),
          `expected ${min === max ? min : `${min}–${max}`} hex digits`,
        ),
      ),
    z.transform((value: string) => value.toLowerCase()),
  );
const nonEmpty = () => z.string().check(z.minLength(1));

const weightSpec = z
  .unknown()
  .check(z.refine((value) => value !== undefined && value !== null, "a weight is required"));

export const inputSchema = z.strictObject({
  path: nonEmpty(),
  sha256: z.optional(hex(64, 64)),
  autov3: z.optional(hex(10, 64)),
});

export const overrideSchema = z.strictObject({
  block: nonEmpty(),
  pattern: z.string(),
  value: z.number(),
  param: z.optional(z.string()),
});

export const loraSchema = z.strictObject({
  input: nonEmpty(),
  ratio: z.number(),
  // checked by validateRecipe, which names the field at fault
  weights: z.optional(z.unknown()),
});

export const stepSchema = z.strictObject({
  method: nonEmpty(),
  inputs: z.record(z.string(), nonEmpty()),
  alpha: z.optional(weightSpec),
  beta: z.optional(weightSpec),
  params: z.optional(z.record(z.string(), weightSpec)),
  block_rule: z._default(z.enum(BLOCK_RULES as ["classic", "sd-mecha"]), "classic"),
  overrides: z.optional(z.array(overrideSchema)),
  arithmetic: z._default(z.enum(["fp32", "lerp"]), "fp32"),
  seed: z.optional(z.int().check(z.nonnegative(), z.maximum(Number.MAX_SAFE_INTEGER))),
  extrapolate: z.optional(z.boolean()),
  loras: z.optional(z.array(loraSchema)),
});

export const vaeSchema = z.strictObject({
  policy: z._default(z.enum(["keep-a", "take-b", "merge", "bake"]), "keep-a"),
  slot: z.optional(z.string()),
  file: z.optional(nonEmpty()),
});

export const outputSchema = z.strictObject({
  step: z.optional(z.string()),
  path: nonEmpty(),
  dtype: z._default(z.enum(["fp16", "bf16", "fp32"]), "fp16"),
  prune: z._default(z.boolean(), true),
  vae: z._default(vaeSchema, { policy: "keep-a" }),
  metadata: z._default(z.enum(["full", "hashes", "none"]), "full"),
  title: z.optional(z.string()),
  description: z.optional(z.string()),
  author: z.optional(z.string()),
  license: z.optional(z.string()),
  tags: z.optional(z.array(z.string())),
  clip_skip: z.optional(z.int().check(z.minimum(1), z.maximum(12))),
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
  lora: Object.keys(loraSchema.shape),
  output: Object.keys(outputSchema.shape),
  vae: Object.keys(vaeSchema.shape),
} as const;

import { FAMILIES } from "../merge/index.js";
import * as z from "../zod.js";

/** The automix search-space file's version (`automix: 1`). */
export const SEARCH_SPACE_VERSION = 1;

const range = z.tuple([z.number(), z.number()]);

/** One rule of a step's block weights: which slots, and whether they are fixed, shared or ranged. */
export const blockRuleSchema = z.strictObject({
  /** A recipe block selector (`BASE`, `IN04-IN08`, `OUT03..OUT05`, `IN`, `OUT`, `*`, `NOT …`). */
  slots: z.string().check(z.minLength(1)),
  fixed: z.optional(z.number()),
  range: z.optional(range),
  /** One value for every selected slot. */
  shared: z.optional(z.boolean()),
});

/** One thing the search varies: a step's weight (`param`) or the input model it takes (`input`). */
export const searchEntrySchema = z.strictObject({
  step: z.string().check(z.minLength(1)),
  param: z.optional(z.string().check(z.minLength(1))),
  input: z.optional(z.string().check(z.minLength(1))),
  choices: z.optional(z.array(z.string().check(z.minLength(1)))),
  range: z.optional(range),
  blocks: z.optional(z.union([z.literal(true), z.array(blockRuleSchema)])),
});

export const searchSpaceSchema = z.strictObject({
  automix: z.literal(SEARCH_SPACE_VERSION),
  family: z.enum(FAMILIES as ["sd1", "sd2", "sdxl"]),
  search: z.array(searchEntrySchema).check(z.minLength(1)),
});

export type SearchSpaceData = z.infer<typeof searchSpaceSchema>;
export type SearchEntryData = z.infer<typeof searchEntrySchema>;
export type BlockRuleData = z.infer<typeof blockRuleSchema>;

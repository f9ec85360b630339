import * as z from "../zod.js";

/**
 * The parts of Civitai's public API answers gyoza relies on, with Civitai's own field names (the
 * handlers in civitai/civitai `src/pages/api/v1/model-versions/[id].ts` and `models/[id].ts`).
 * Every object is loose: Civitai adds fields often, and an unknown field must never fail a
 * lookup; the parsed value keeps them. Fields Civitai may leave out are optional or nullable.
 */

const id = z.int().check(z.nonnegative());
const text = z.optional(z.nullable(z.string()));

/** `files[].hashes`: `{AutoV1, AutoV2, AutoV3, SHA256, CRC32, BLAKE3}` as uppercase hex, each optional. */
export const civitaiFileHashesSchema = z.record(z.string(), z.nullable(z.string()));

export const civitaiFileSchema = z.looseObject({
  id: z.optional(id),
  name: z.string(),
  sizeKB: z.optional(z.nullable(z.number())),
  type: z.optional(z.nullable(z.string())),
  /** `{fp: fp16|fp32|bf16, size: full|pruned, format: SafeTensor|PickleTensor|Other}` */
  metadata: z.optional(
    z.nullable(
      z.looseObject({
        fp: text,
        size: text,
        format: text,
      }),
    ),
  ),
  hashes: z.optional(civitaiFileHashesSchema),
  primary: z.optional(z.nullable(z.boolean())),
  downloadUrl: text,
});

/** A preview image; `meta` is the generation data Civitai read from it (A1111 names, free-form). */
export const civitaiImageSchema = z.looseObject({
  url: z.string(),
  nsfwLevel: z.optional(z.nullable(z.number())),
  width: z.optional(z.nullable(z.number())),
  height: z.optional(z.nullable(z.number())),
  /** a blurhash, not a file hash */
  hash: text,
  type: text,
  meta: z.optional(z.nullable(z.record(z.string(), z.unknown()))),
});

const versionFields = {
  id,
  name: z.string(),
  baseModel: text,
  description: text,
  trainedWords: z.optional(z.nullable(z.array(z.string()))),
  files: z.array(civitaiFileSchema),
  images: z.optional(z.array(civitaiImageSchema)),
  downloadUrl: text,
};

/** `GET /api/v1/model-versions/{id}` and `/api/v1/model-versions/by-hash/{hash}`. */
export const civitaiModelVersionSchema = z.looseObject({
  ...versionFields,
  modelId: id,
  model: z.looseObject({
    name: z.string(),
    type: text,
    nsfw: z.optional(z.nullable(z.boolean())),
  }),
});

/** `GET /api/v1/models/{id}`: the model with its versions (which carry no `model` of their own). */
export const civitaiModelSchema = z.looseObject({
  id,
  name: z.string(),
  description: text,
  type: text,
  nsfw: z.optional(z.nullable(z.boolean())),
  tags: z.optional(z.array(z.string())),
  creator: z.optional(z.nullable(z.looseObject({ username: text, image: text }))),
  stats: z.optional(z.nullable(z.record(z.string(), z.unknown()))),
  modelVersions: z.array(z.looseObject(versionFields)),
});

export type CivitaiFile = z.infer<typeof civitaiFileSchema>;
export type CivitaiImage = z.infer<typeof civitaiImageSchema>;
export type CivitaiModelVersion = z.infer<typeof civitaiModelVersionSchema>;
export type CivitaiModel = z.infer<typeof civitaiModelSchema>;

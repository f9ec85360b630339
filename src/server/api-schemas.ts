/**
 * The JSON API of `gyoza serve`: zod schemas for what clients send (validated by the server) and
 * the types of what it answers. The browser client imports these with `import type` only, so its
 * bundle pulls no server code. Fields are only ever added, never renamed.
 */
import type { ModelDiff } from "../analysis/diff-models.js";
import type { Recovery } from "../analysis/recover-weights.js";
import type { ModelView } from "../library/model-view.js";
import type { LibraryEntry } from "../library/query-library.js";
import type { MergePlan } from "../plan/merge-plan.js";
import * as z from "../zod.js";

export type { LibraryEntry, MergePlan, ModelDiff, ModelView, Recovery };

/** Every error answer: `{error: {code, message, fix?}}` (HTTP 400, 401, 403, 404, 409, 413). */
export const ApiErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    fix: z.optional(z.string()),
    /** Where inside the request (a recipe path such as `steps.final.alpha`), when known. */
    path: z.optional(z.string()),
  }),
});
export type ApiError = z.infer<typeof ApiErrorSchema>;

export const FamilySchema = z.enum(["sd1", "sd2", "sdxl"]);
export type ApiFamily = z.infer<typeof FamilySchema>;

/** `GET /api/health` */
export interface HealthResponse {
  version: string;
  library: string;
  /** Folders whose files requests may name: the --models folders, then the library's roots. */
  roots: string[];
  /** Where relative paths in requests and recipes start: the first --models folder, else the first library root. */
  baseDir: string;
}

/** `GET /api/library/models` */
export interface ModelSummary {
  id: number;
  name: string;
  type: string | null;
  civitaiModelId: number | null;
  source: string;
}

/** `GET /api/library/files?name=&tag=&base=&hash=&parent=` */
export const FilesQuerySchema = z.object({
  name: z.optional(z.string()),
  tag: z.optional(z.string()),
  base: z.optional(z.string()),
  hash: z.optional(z.string()),
  parent: z.optional(z.string()),
  token: z.optional(z.string()),
});
export type FilesQuery = z.infer<typeof FilesQuerySchema>;

/** `GET /api/presets?family=sd1|sdxl` → `PresetEntry[]` */
export const PresetsQuerySchema = z.object({
  family: z.optional(FamilySchema),
  token: z.optional(z.string()),
});
export interface PresetEntry {
  name: string;
  weights: number[];
}

/** `GET /api/layouts/:family` */
export interface LayoutResponse {
  family: ApiFamily;
  /** Slot names in order: BASE, IN00…, M00, OUT00… */
  slots: string[];
}

/** `POST /api/weights/parse` */
export const WeightsParseRequestSchema = z.object({
  text: z.string().check(z.maxLength(10_000)),
  family: z.optional(FamilySchema),
});
export type WeightsParseRequest = z.infer<typeof WeightsParseRequestSchema>;
export interface WeightsParseResponse {
  /** One number for all blocks, a vector (one per slot), or a preset name resolved to its vector. */
  weights: number | number[];
  /** Set when the text named a preset. */
  preset?: string;
}

/** `POST /api/recipes/plan` */
export const RecipePlanRequestSchema = z.object({ yaml: z.string() });
export type RecipePlanRequest = z.infer<typeof RecipePlanRequestSchema>;
export interface RecipePlanResponse {
  /** The recipe after loading (defaults filled in), as JSON. */
  recipe: unknown;
  /** `gyoza merge --plan`'s text. */
  planText: string;
  /** The plan without its per-key list (`gyoza merge --plan --json` has it all). */
  plan: Pick<MergePlan, "architecture" | "family" | "sources" | "steps" | "output" | "warnings" | "loras"> & {
    /** How many keys the output has. */
    keyCount: number;
  };
}

/** `POST /api/jobs` */
export const JobRequestSchema = z.object({
  kind: z.literal("merge"),
  yaml: z.string(),
  /** Replace an existing file at the output path (refused with 409 `output-exists` otherwise). */
  replace: z.optional(z.boolean()),
});
export type JobRequest = z.infer<typeof JobRequestSchema>;
export interface JobCreated {
  id: string;
}

export const JOB_STATES = ["queued", "running", "done", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobProgress {
  /** `queued`, `planning`, the engine's task (`merge`, …), `hashing`, `library`, `done`. */
  phase: string;
  bytesDone: number;
  bytesTotal: number;
  /** null until enough is known. */
  etaSeconds: number | null;
}

export interface JobResult {
  output: string;
  hashes: Record<string, string | null>;
  libraryFileId: number | null;
  seconds: number;
}

/** `GET /api/jobs/:id` (and each item of `GET /api/jobs`). */
export interface JobView {
  id: string;
  kind: "merge";
  state: JobState;
  output: string;
  createdAt: string;
  progress: JobProgress;
  result?: JobResult;
  error?: ApiError["error"];
}

/**
 * `GET /api/jobs/:id/events` (Server-Sent Events): events `progress` (data: JobView), then one of
 * `done`, `failed`, `cancelled` (data: JobView); the stream ends after it.
 */
export type JobEventName = "progress" | "done" | "failed" | "cancelled";

/** A model for the analyse routes: a library file id, or a path inside the library roots / model folders. */
export const ModelRefSchema = z.union([z.number().check(z.int()), z.string().check(z.minLength(1))]);
export type ModelRef = z.infer<typeof ModelRefSchema>;

/** `POST /api/analyse/diff` → `ModelDiff` */
export const DiffRequestSchema = z.object({ a: ModelRefSchema, b: ModelRefSchema });
export type DiffRequest = z.infer<typeof DiffRequestSchema>;

/** `POST /api/analyse/recover` */
export const RecoverRequestSchema = z.object({
  merged: ModelRefSchema,
  parents: z.tuple([ModelRefSchema, ModelRefSchema]),
});
export type RecoverRequest = z.infer<typeof RecoverRequestSchema>;
export interface RecoverResponse {
  /** Recovery (the library's): slots [{slot, alpha, residual, …}], alpha by slot, vae, overrides, residual, explained, nearestPreset. */
  recovery: Recovery;
  /** The weights in slot order (0 where any α fits), ready for the curve editor. */
  weights: number[];
  /** A recipe reproducing the merge (open it in the builder). */
  recipeYaml: string;
}

/** `POST /api/images/inspect` (raw image bytes, ≤ 32 MiB). */
export interface ImageInspectResponse {
  generation: unknown;
  metadataTexts: Record<string, string>;
  matches: { model: string | null; version: string | null; file: LibraryEntry; hash: string }[];
}

/** An image for `POST /api/images/copy-metadata`: its bytes (base64, ≤ 32 MiB) with a name, or a file inside the allowed folders. */
export const ImageRefSchema = z.union([
  z.object({ name: z.string().check(z.minLength(1), z.maxLength(255)), base64: z.string() }),
  z.object({ path: z.string().check(z.minLength(1)) }),
]);
export type ImageRef = z.infer<typeof ImageRefSchema>;

/**
 * `POST /api/images/copy-metadata`: the target image with the source's generation metadata (its
 * pixels untouched). Without `output` nothing is written: the new image comes back as base64. With
 * `output` (inside the library roots / model folders, the target's container) it is written there
 * atomically; an existing file is replaced only with `replace: true`.
 */
export const CopyMetadataRequestSchema = z.object({
  source: ImageRefSchema,
  target: ImageRefSchema,
  output: z.optional(z.string().check(z.minLength(1))),
  replace: z.optional(z.boolean()),
  /** Drop metadata the target's container cannot hold instead of refusing (400). */
  allowLoss: z.optional(z.boolean()),
});
export type CopyMetadataRequest = z.infer<typeof CopyMetadataRequestSchema>;
export interface CopyMetadataResponse {
  /** The written file (absolute), or null when the image is returned as `base64`. */
  output: string | null;
  /** The new image, when `output` was not given. */
  base64: string | null;
  /** The target's container, which the new image keeps. */
  container: "png" | "jpeg" | "webp";
  /** Metadata keys the new image carries. */
  carried: string[];
  /** Source keys the target's container cannot hold (only with `allowLoss`). */
  dropped: string[];
  /** The target's own keys that were replaced. */
  replaced: string[];
}

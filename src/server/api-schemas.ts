/**
 * The JSON API of `gyoza serve`: zod schemas for what clients send (validated by the server) and
 * the types of what it answers. The browser client imports these with `import type` only, so its
 * bundle pulls no server code. Fields are only ever added, never renamed.
 */
import type { ModelDiff } from "../analysis/diff-models.js";
import type { NearestPreset } from "../analysis/nearest-preset.js";
import type { CandidateScore, SkippedCandidate } from "../analysis/rank-parents.js";
import type { Recovery } from "../analysis/recover-weights.js";
import type { ModelView } from "../library/model-view.js";
import type { LibraryEntry } from "../library/query-library.js";
import type { MergePlan } from "../plan/merge-plan.js";
import * as z from "../zod.js";

export type {
  CandidateScore,
  LibraryEntry,
  MergePlan,
  ModelDiff,
  ModelView,
  NearestPreset,
  Recovery,
  SkippedCandidate,
};

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

/** A model for jobs and the analyse views: a library file id, or a path inside the library roots / model folders. */
export const ModelRefSchema = z.union([z.number().check(z.int()), z.string().check(z.minLength(1))]);
export type ModelRef = z.infer<typeof ModelRefSchema>;

/** Finished jobs the server keeps (oldest dropped first); queued and running jobs are always kept. */
export const KEPT_FINISHED_JOBS = 100;

/**
 * `POST /api/jobs` → 202 `{id}`. Every long operation is a job: it runs in the server's queue (one
 * at a time), reports progress over `GET /api/jobs/:id/events` and is cancelled by
 * `DELETE /api/jobs/:id`. The kinds:
 * - `merge`: run a recipe (`yaml`) → `result` (the output, its hashes, its library file id);
 * - `diff`: per-block similarity of models `a` and `b` → `diff` (ModelDiff);
 * - `recover`: block weights of `merged` from its two `parents` → `recover` (RecoverResponse);
 * - `parents`: rank candidate parents of `merged` (default: every checkpoint in the library) → `parents`.
 */
export const MergeJobRequestSchema = z.object({
  kind: z.literal("merge"),
  yaml: z.string(),
  /** Replace an existing file at the output path (refused with 409 `output-exists` otherwise). */
  replace: z.optional(z.boolean()),
});
export const DiffJobRequestSchema = z.object({
  kind: z.literal("diff"),
  a: ModelRefSchema,
  b: ModelRefSchema,
});
export const RecoverJobRequestSchema = z.object({
  kind: z.literal("recover"),
  merged: ModelRefSchema,
  parents: z.tuple([ModelRefSchema, ModelRefSchema]),
});
export const ParentsJobRequestSchema = z.object({
  kind: z.literal("parents"),
  merged: ModelRefSchema,
  /** The models to rank (2–500); default every checkpoint file of the library but `merged`. */
  candidates: z.optional(z.array(ModelRefSchema).check(z.minLength(2), z.maxLength(500))),
  /** Pairs and candidates in the answer (default 5). */
  top: z.optional(z.number().check(z.int(), z.minimum(1), z.maximum(100))),
});
export const JobRequestSchema = z.discriminatedUnion("kind", [
  MergeJobRequestSchema,
  DiffJobRequestSchema,
  RecoverJobRequestSchema,
  ParentsJobRequestSchema,
]);
export type JobRequest = z.infer<typeof JobRequestSchema>;
export interface JobCreated {
  id: string;
}

export const JOB_KINDS = ["merge", "diff", "recover", "parents"] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export const JOB_STATES = ["queued", "running", "done", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];

export interface JobProgress {
  /** `queued`, `planning`, the engine's task (`merge`, `diff`, `fit`, `sample`, …), `hashing`, `library`, `done`. */
  phase: string;
  bytesDone: number;
  bytesTotal: number;
  /** null until enough is known. */
  etaSeconds: number | null;
}

/** A merge job's result. */
export interface JobResult {
  output: string;
  hashes: Record<string, string | null>;
  libraryFileId: number | null;
  seconds: number;
}

/** `GET /api/jobs/:id` (and each item of `GET /api/jobs`). */
export interface JobView {
  id: string;
  kind: JobKind;
  state: JobState;
  /** The file a merge writes; for the analyses, the model analysed (`merged`, or `a`). */
  output: string;
  /** What the job does, in words ("diff a.safetensors ↔ b.safetensors"). */
  title: string;
  createdAt: string;
  progress: JobProgress;
  /** `merge` */
  result?: JobResult;
  /** `diff` */
  diff?: ModelDiff;
  /** `recover` */
  recover?: RecoverResponse;
  /** `parents` */
  parents?: ParentsResponse;
  error?: ApiError["error"];
}

/**
 * `GET /api/jobs/:id/events` (Server-Sent Events): events `progress` (data: JobView), then one of
 * `done`, `failed`, `cancelled` (data: JobView); the stream ends after it.
 */
export type JobEventName = "progress" | "done" | "failed" | "cancelled";

/** A `recover` job's answer. */
export interface RecoverResponse {
  /** Recovery (the library's): slots [{slot, alpha, residual, …}], alpha by slot, vae, overrides, residual, explained, nearestPreset. */
  recovery: Recovery;
  /** The weights in slot order (0 where any α fits), ready for the curve editor. */
  weights: number[];
  /** A recipe reproducing the merge (open it in the builder). */
  recipeYaml: string;
}

/** One candidate pair of a `parents` job, best first. */
export interface ParentPair {
  a: string;
  b: string;
  /** Library file ids of a and b (null for a path outside the library). */
  aId: number | null;
  bId: number | null;
  /** √(unexplained / ‖M − A‖²) over the samples: 0 = a weighted sum of A and B explains the merge fully. */
  sampledResidual: number;
  /** Slots solved (exactly where `residual` is set, else in the samples), of `slots`. */
  solvedSlots: number;
  slots: number;
  /** The exact recovery (the best pairs only). */
  residual?: number;
  explained?: boolean;
  nearestPreset?: NearestPreset | null;
  /** The recovered weights in slot order and a recipe reproducing the merge (exact pairs only). */
  weights?: number[];
  recipeYaml?: string;
}

/** A `parents` job's answer: the best pairs, the candidates by their best pair, and what was skipped. */
export interface ParentsResponse {
  merged: string;
  pairs: ParentPair[];
  candidates: (CandidateScore & { fileId: number | null; name: string })[];
  skipped: SkippedCandidate[];
  sampledElements: number;
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

/** An axis of a grid, in the user's terms: `parameter` as typed (`OUT03`), one label per value (`OUT03 = 0.2`). */
export interface GridAxisView {
  axis: "x" | "y" | "z";
  parameter: string;
  labels: string[];
}

/** `GET /api/grids`: a grid folder found under the allowed folders (one holding a gyoza grid.json). */
export interface GridSummary {
  /** Opaque reference for `/api/grids/:id` (the folder, base64url). */
  id: string;
  /** The title, else the folder's name. */
  name: string;
  folder: string;
  axes: GridAxisView[];
  /** Cells the axes make (done + failed + not yet made). */
  cells: number;
  done: number;
  failed: number;
  created: string | null;
  /** Why grid.json could not be read; the other fields are then empty. */
  problem?: string;
}

/** A cell of `GET /api/grids/:id`; `n` is its number in the cell routes. */
export interface GridCellView {
  n: number;
  x: number;
  y: number;
  z: number;
  labels: string[];
  status: "done" | "failed";
  error: string | null;
  recipeKey: string | null;
  checkpoint: string | null;
  /** The generation settings the cell's image was made with. */
  params: Record<string, unknown>;
  /** API path (under /api) of the cell's PNG, when it has one. */
  image: string | null;
  /** API path (under /api) of the cell's recipe, when it has one. */
  recipe: string | null;
}

/** `GET /api/grids/:id` */
export interface GridView extends Omit<GridSummary, "problem"> {
  title: string | null;
  backend: string | null;
  /** API path (under /api) of the whole grid.png. */
  image: string;
  cellList: GridCellView[];
}

/** `GET /api/grids/:id/cells/:n/recipe`: the cell's recipe with paths relative to the server's base folder, for the builder. */
export interface GridCellRecipe {
  yaml: string;
  file: string;
}

/**
 * `POST /api/automix/studies/:name/trials/:n/rating` (type in automix-api.ts): one score per image,
 * or the index of the best image. The route checks it rule by rule (count, finiteness, range) so
 * each refusal says which; this schema documents it in the OpenAPI document.
 */
export const AutomixRatingRequestSchema = z.union([
  z.strictObject({ scores: z.array(z.number()).check(z.minLength(1)) }),
  z.strictObject({ best: z.number().check(z.int(), z.nonnegative()) }),
]);

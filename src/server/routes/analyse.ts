import { existsSync } from "node:fs";
import { basename, extname } from "node:path";
import { diffModels } from "../../analysis/diff-models.js";
import { rankParents } from "../../analysis/rank-parents.js";
import type { Recovery } from "../../analysis/recover-weights.js";
import { recoverWeights } from "../../analysis/recover-weights.js";
import { recoveryRecipe } from "../../analysis/recovery-recipe.js";
import { withCheckpoints } from "../../analysis/with-checkpoints.js";
import { findEntries } from "../../library/index.js";
import type { LibraryEntry } from "../../library/query-library.js";
import { walkModelFiles } from "../../library/walk-model-files.js";
import { saveRecipe } from "../../recipe/save-recipe.js";
import type * as z from "../../zod.js";
import type {
  DiffJobRequestSchema,
  ModelRef,
  ParentsJobRequestSchema,
  ParentsResponse,
  RecoverJobRequestSchema,
  RecoverResponse,
} from "../api-schemas.js";
import type { ServerContext } from "../create-server.js";
import { HttpError } from "../http-errors.js";
import type { JobWork } from "../jobs.js";

/** A library file id, or a path confined to the allowed folders → an absolute path. */
export function modelPathOf(ref: ModelRef, context: ServerContext): string {
  if (typeof ref === "number") {
    const row = context.store.fileById(ref);
    if (!row || row.missing) throw new HttpError(404, "not-found", `no library file ${ref}`);
    return row.path;
  }
  return context.confine(ref);
}

/** Checkpoint files a parents job may rank by default (LoRAs, VAEs, embeddings are no parents). */
const CHECKPOINT_FILE = /\.(safetensors|ckpt|pt|pth|bin)$/i;

/** A recovery as plain JSON with the weights in slot order and a recipe reproducing it. */
function recoveryAnswer(recovery: Recovery, parents: string[], merged: string): RecoverResponse {
  const recipe = recoveryRecipe(recovery, { parents, merged, dtype: "fp16" });
  return {
    recovery: JSON.parse(JSON.stringify(recovery)) as RecoverResponse["recovery"],
    weights: recovery.slots.map((slot) => slot.alpha ?? 0),
    recipeYaml: saveRecipe(recipe),
  };
}

export function diffWork(request: z.infer<typeof DiffJobRequestSchema>, context: ServerContext): JobWork {
  const paths = [modelPathOf(request.a, context), modelPathOf(request.b, context)];
  return {
    kind: "diff",
    output: paths[0]!,
    title: `diff ${basename(paths[0]!)} ↔ ${basename(paths[1]!)}`,
    run: async ({ kernel, onProgress }) => ({
      diff: JSON.parse(
        JSON.stringify(await withCheckpoints(paths, ([a, b]) => diffModels(a!, b!, { kernel, onProgress }))),
      ),
    }),
  };
}

export function recoverWork(
  request: z.infer<typeof RecoverJobRequestSchema>,
  context: ServerContext,
): JobWork {
  const merged = modelPathOf(request.merged, context);
  const parents = request.parents.map((parent) => modelPathOf(parent, context));
  return {
    kind: "recover",
    output: merged,
    title: `recover ${basename(merged)} from ${parents.map((parent) => basename(parent)).join(" + ")}`,
    run: async ({ kernel, onProgress }) => {
      const recovery = await withCheckpoints([merged, ...parents], ([m, ...p]) =>
        recoverWeights(m!, p, { kernel, onProgress }),
      );
      return { recover: recoveryAnswer(recovery, parents, merged) };
    },
  };
}

/** The most candidates a default `parents` job ranks (pairs grow as n²): more, and the request must name them. */
const MAX_DEFAULT_CANDIDATES = 200;

/**
 * Candidate parents by default: the checkpoint files under the --models folders and the library
 * roots, and the library's checkpoints (files the library knows as VAEs, LoRAs or embeddings are
 * left out; any other architecture is skipped by the ranking itself, with why).
 */
async function defaultCandidates(context: ServerContext, library: LibraryEntry[]): Promise<string[]> {
  const notCheckpoints = new Set(
    library.filter((entry) => entry.kind !== "checkpoint").map((entry) => entry.path),
  );
  const walked = (await walkModelFiles(context.allowedRoots().filter((root) => existsSync(root)))).map(
    (file) => file.path,
  );
  const known = library
    .filter((entry) => !entry.missing && entry.kind === "checkpoint")
    .map((entry) => entry.path);
  const inside = (path: string) => {
    try {
      context.confine(path);
      return true;
    } catch {
      return false;
    }
  };
  return [...walked, ...known].filter(
    (path) => CHECKPOINT_FILE.test(extname(path)) && !notCheckpoints.has(path) && inside(path),
  );
}

export async function parentsWork(
  request: z.infer<typeof ParentsJobRequestSchema>,
  context: ServerContext,
): Promise<JobWork> {
  const merged = modelPathOf(request.merged, context);
  const library = findEntries(context.store, {});
  const fileIds = new Map(library.map((entry) => [entry.path, entry.id]));
  const chosen =
    request.candidates?.map((candidate) => modelPathOf(candidate, context)) ??
    (await defaultCandidates(context, library));
  const candidates = [...new Set(chosen)].filter((path) => path !== merged).sort();
  if (candidates.length < 2) {
    throw new HttpError(
      400,
      "usage",
      `${candidates.length} candidate parent(s) besides ${basename(merged)}: need two`,
      "put the parents in a --models folder or the library (gyoza library add), or name candidates",
    );
  }
  if (request.candidates === undefined && candidates.length > MAX_DEFAULT_CANDIDATES) {
    throw new HttpError(
      400,
      "usage",
      `${candidates.length} checkpoints in the library and model folders: more than ${MAX_DEFAULT_CANDIDATES} to rank`,
      "name the candidates (up to 500)",
    );
  }
  const top = request.top ?? 5;
  return {
    kind: "parents",
    output: merged,
    title: `parents of ${basename(merged)} among ${candidates.length} models`,
    run: async ({ kernel, onProgress }) => {
      const ranking = await withCheckpoints([merged, ...candidates], ([model, ...others]) =>
        rankParents(model!, others, { kernel, onProgress }),
      );
      const answer: ParentsResponse = {
        merged,
        pairs: ranking.pairs.slice(0, top).map((pair) => ({
          a: pair.a,
          b: pair.b,
          aId: fileIds.get(pair.a) ?? null,
          bId: fileIds.get(pair.b) ?? null,
          sampledResidual: pair.sampledResidual,
          solvedSlots: pair.recovery?.solvedSlots ?? pair.sampledSolvedSlots,
          slots: ranking.slotCount,
          ...(pair.recovery
            ? {
                residual: pair.recovery.residual,
                explained: pair.recovery.explained,
                nearestPreset: pair.recovery.nearestPreset,
                ...(({ weights, recipeYaml }) => ({ weights, recipeYaml }))(
                  recoveryAnswer(pair.recovery, [pair.a, pair.b], merged),
                ),
              }
            : {}),
        })),
        candidates: ranking.candidates.slice(0, top).map((candidate) => ({
          ...candidate,
          fileId: fileIds.get(candidate.path) ?? null,
          name: basename(candidate.path),
        })),
        skipped: [...ranking.skipped],
        sampledElements: ranking.sampledElements,
      };
      return { parents: JSON.parse(JSON.stringify(answer)) as ParentsResponse };
    },
  };
}

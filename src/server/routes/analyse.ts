import type { FastifyInstance } from "fastify";
import { diffModels } from "../../analysis/diff-models.js";
import { recoverWeights } from "../../analysis/recover-weights.js";
import { recoveryRecipe } from "../../analysis/recovery-recipe.js";
import { withCheckpoints } from "../../analysis/with-checkpoints.js";
import { saveRecipe } from "../../recipe/save-recipe.js";
import {
  DiffRequestSchema,
  type ModelRef,
  RecoverRequestSchema,
  type RecoverResponse,
} from "../api-schemas.js";
import type { ServerContext } from "../create-server.js";
import { HttpError, parseWith } from "../http-errors.js";

/** A library file id, or a path confined to the allowed folders → an absolute path. */
export function modelPathOf(ref: ModelRef, context: ServerContext): string {
  if (typeof ref === "number") {
    const row = context.store.fileById(ref);
    if (!row || row.missing) throw new HttpError(404, "not-found", `no library file ${ref}`);
    return row.path;
  }
  return context.confine(ref);
}

/** Diff and recovery of library models (one streaming pass each, in the server process). */
export function registerAnalyseRoutes(app: FastifyInstance, context: ServerContext): void {
  app.post("/api/analyse/diff", async (request) => {
    const { a, b } = parseWith(DiffRequestSchema, request.body, "body");
    const paths = [modelPathOf(a, context), modelPathOf(b, context)];
    const kernel = await context.kernel();
    return withCheckpoints(paths, ([first, second]) => diffModels(first!, second!, { kernel }));
  });

  app.post("/api/analyse/recover", async (request): Promise<RecoverResponse> => {
    const { merged, parents } = parseWith(RecoverRequestSchema, request.body, "body");
    const mergedPath = modelPathOf(merged, context);
    const parentPaths = parents.map((parent) => modelPathOf(parent, context));
    const kernel = await context.kernel();
    const recovery = await withCheckpoints([mergedPath, ...parentPaths], ([m, ...p]) =>
      recoverWeights(m!, p, { kernel }),
    );
    const recipe = recoveryRecipe(recovery, { parents: parentPaths, merged: mergedPath, dtype: "fp16" });
    return {
      recovery: JSON.parse(JSON.stringify(recovery)) as RecoverResponse["recovery"],
      weights: recovery.slots.map((slot) => slot.alpha ?? 0),
      recipeYaml: saveRecipe(recipe),
    };
  });
}

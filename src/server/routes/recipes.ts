import type { FastifyInstance } from "fastify";
import { findPreset } from "../../merge/presets.js";
import { parseWeightText } from "../../merge/weight-text.js";
import { formatPlan, planRecipe } from "../../plan/index.js";
import { loadRecipe, type Recipe } from "../../recipe/index.js";
import {
  RecipePlanRequestSchema,
  type RecipePlanResponse,
  WeightsParseRequestSchema,
  type WeightsParseResponse,
} from "../api-schemas.js";
import type { ServerContext } from "../create-server.js";
import { parseWith } from "../http-errors.js";

/**
 * Loads a recipe sent as YAML and confines every file it names (inputs, output, VAE) to the allowed
 * folders; relative paths start at the server's base folder. Returns the recipe and that folder.
 */
export function loadConfinedRecipe(
  yaml: string,
  context: ServerContext,
): { recipe: Recipe; baseDir: string; output: string } {
  const recipe = loadRecipe(yaml, { sourceName: "recipe" });
  const baseDir = context.baseDir();
  for (const input of Object.values(recipe.inputs)) context.confine(input.path);
  if (recipe.output.vae.file !== undefined) context.confine(recipe.output.vae.file);
  const output = context.confine(recipe.output.path);
  return { recipe, baseDir, output };
}

/** Weight text and recipe plans: what the builder checks as the user types. */
export function registerRecipeRoutes(app: FastifyInstance, context: ServerContext): void {
  app.post("/api/weights/parse", async (request): Promise<WeightsParseResponse> => {
    const { text, family } = parseWith(WeightsParseRequestSchema, request.body, "body");
    const parsed = parseWeightText(text, { where: "weights" });
    if (typeof parsed !== "string") return { weights: parsed };
    const preset = findPreset(parsed, family ?? "sd1");
    return { weights: [preset.base, ...preset.unet], preset: preset.name };
  });

  app.post("/api/recipes/plan", async (request): Promise<RecipePlanResponse> => {
    const { yaml } = parseWith(RecipePlanRequestSchema, request.body, "body");
    const { recipe, baseDir } = loadConfinedRecipe(yaml, context);
    const planned = await planRecipe(recipe, { baseDir });
    await planned.close();
    const { plan } = planned;
    return {
      recipe,
      planText: formatPlan(plan),
      plan: {
        architecture: plan.architecture,
        family: plan.family,
        sources: plan.sources,
        steps: plan.steps,
        output: plan.output,
        warnings: plan.warnings,
        loras: plan.loras,
        keyCount: plan.keys.length,
      },
    };
  });
}

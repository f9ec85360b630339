import { GyozaError } from "../errors.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { ElementalOverride } from "../merge/index.js";
import { type Recipe, recipeFromData } from "../recipe/index.js";
import {
  asObject,
  type MergeTool,
  mergeModels,
  mergeRecipeParents,
  mergeRecipeTool,
} from "./merge-recipes.js";
import { isSet, parseVector, readA1111Extras, readElemental } from "./recipe-source-fields.js";
import { HashIndex } from "./search-by-hash.js";

/** Something the source recipe records that the gyoza recipe does not reproduce. */
export interface NotCarried {
  field: string;
  value: unknown;
  reason: string;
  /** True when leaving it out gives a different model (not just other metadata or rounding). */
  changesResult: boolean;
}

export interface ImportedRecipe {
  tool: MergeTool;
  /** The equivalent gyoza recipe, or null when the merge cannot be expressed (see notCarried). */
  recipe: Recipe | null;
  notCarried: NotCarried[];
}

export interface ImportOptions {
  /** Searched files: inputs found by sha256 get their real path. */
  index?: HashIndex;
  /** The file the metadata came from, for error messages. */
  file?: string;
  /** Output path written into the recipe (default: from custom_name, else imported.safetensors). */
  outputPath?: string;
}

interface MethodChoice {
  method: string;
  inputs: string[];
  params: string[];
  arithmetic?: "lerp";
}

/** A1111's interp_method → method (https://github.com/AUTOMATIC1111/stable-diffusion-webui modules/extras.py). */
const A1111_METHODS: Record<string, MethodChoice> = {
  "Weighted sum": { method: "weighted_sum", inputs: ["a", "b"], params: ["alpha"] },
  "Add difference": { method: "add_difference", inputs: ["a", "b", "c"], params: ["alpha"] },
};

/** supermerger's mode (text before ":") and calcmode → method; its weight sum is torch.lerp (DOMAIN.md §3). */
function supermergerMethod(mode: string, calcmode: string): MethodChoice | undefined {
  const table: Record<string, MethodChoice> = {
    "weight sum/normal": {
      method: "weighted_sum",
      inputs: ["a", "b"],
      params: ["alpha"],
      arithmetic: "lerp",
    },
    "weight sum/cosinea": { method: "cosine_a", inputs: ["a", "b"], params: ["alpha"] },
    "weight sum/cosineb": { method: "cosine_b", inputs: ["a", "b"], params: ["alpha"] },
    "add difference/normal": { method: "add_difference", inputs: ["a", "b", "c"], params: ["alpha"] },
    "add difference/traindifference": {
      method: "train_difference",
      inputs: ["a", "b", "c"],
      params: ["alpha"],
    },
    "triple sum/normal": { method: "triple_sum", inputs: ["a", "b", "c"], params: ["alpha", "beta"] },
    "sum twice/normal": { method: "sum_twice", inputs: ["a", "b", "c"], params: ["alpha", "beta"] },
  };
  const key = `${mode.split(":")[0]!.trim().toLowerCase()}/${(calcmode || "normal").toLowerCase()}`;
  return table[key];
}

/**
 * Turns the A1111 or supermerger `sd_merge_recipe` of a file into an equivalent gyoza recipe where
 * it can be expressed, listing every recorded setting that is not carried over and why.
 */
export function importMergeRecipe(
  metadata: Readonly<Record<string, string>>,
  options: ImportOptions = {},
): ImportedRecipe {
  const gyoza = asObject(metadata.gyoza_recipe);
  if (gyoza) return extractGyozaRecipe(gyoza, options);
  const source = asObject(metadata.sd_merge_recipe);
  if (!source) {
    throw new GyozaError("recipe", "the file records no merge recipe (gyoza_recipe or sd_merge_recipe)", {
      file: options.file,
    });
  }
  const tool = mergeRecipeTool(source);
  const notCarried: NotCarried[] = [];
  const lost = (field: string, reason: string, changesResult: boolean) =>
    notCarried.push({ field, value: source[field], reason, changesResult });
  let choice: MethodChoice | undefined;
  const weights: Record<string, unknown> = {};
  const overrides: ElementalOverride[] = [];
  if (tool === "a1111") {
    choice = A1111_METHODS[String(source.interp_method)];
    if (!choice)
      lost(
        "interp_method",
        "not a merge gyoza can express (No interpolation only copies A: use gyoza convert)",
        true,
      );
    else
      lost(
        "interp_method",
        "A1111 computes in the inputs' stored precision; gyoza computes in fp32, so fp16 inputs may differ in the last bit",
        false,
      );
    weights.alpha = Number(source.multiplier);
    readA1111Extras(source, lost);
  } else if (tool === "supermerger") {
    choice = supermergerMethod(String(source.mode ?? ""), String(source.calcmode ?? "normal"));
    if (!choice)
      lost("calcmode", `mode "${source.mode}" with calcmode "${source.calcmode}" has no gyoza method`, true);
    for (const [param, vector, base] of [
      ["alpha", "weights_alpha", "base_alpha"],
      ["beta", "weights_beta", "base_beta"],
    ] as const) {
      weights[param] = source.mbw ? parseVector(source[vector]) : Number(source[base]);
      if (source.mbw && weights[param] === undefined && choice?.params.includes(param))
        lost(vector, "block weights that are not a list of numbers", true);
    }
    readElemental(source.elemental_merge, overrides, lost);
    for (const field of ["exclude", "include"]) {
      if (isSet(source[field]))
        lost(field, "supermerger's block inclusion/exclusion lists are not imported", true);
    }
    notCarried.push({
      field: "save_as_half",
      value: undefined,
      reason: "supermerger does not record the precision it saved: fp16 assumed",
      changesResult: false,
    });
  } else {
    throw new GyozaError(
      "recipe",
      `sd_merge_recipe of type ${JSON.stringify(source.type)} cannot be imported`,
      {
        fix: "only A1111 (type webui) and supermerger recipes are imported",
      },
    );
  }
  if (!choice) return { tool, recipe: null, notCarried };

  const hashes = mergeRecipeParents(source);
  const models = mergeModels(metadata);
  if (hashes.length < choice.inputs.length) {
    lost(
      tool === "a1111" ? "tertiary_model_hash" : "model_c",
      `${choice.method} needs ${choice.inputs.length} models, the recipe names ${hashes.length}`,
      true,
    );
    return { tool, recipe: null, notCarried };
  }
  const inputs = Object.fromEntries(
    choice.inputs.map((name, index) => {
      const sha256 = hashes[index]!;
      const found = options.index?.find({ sha256 }, true)[0]?.path;
      const recorded = models.get(sha256)?.name?.replace(/\s*\[[0-9a-f]+\]$/i, "");
      return [
        name,
        {
          path: found ?? recorded ?? `${sha256.slice(0, 10)}.safetensors`,
          ...(sha256.length === 64 ? { sha256 } : {}),
        },
      ];
    }),
  );
  const customName =
    typeof source.custom_name === "string" && source.custom_name ? source.custom_name : undefined;
  const step: Record<string, unknown> = {
    method: choice.method,
    inputs: Object.fromEntries(choice.inputs.map((name) => [name, name])),
    block_rule: "classic",
    ...(choice.arithmetic ? { arithmetic: choice.arithmetic } : {}),
    ...(overrides.length ? { overrides } : {}),
  };
  for (const param of choice.params) step[param] = weights[param];
  const bake = typeof source.bake_in_vae === "string" && source.bake_in_vae && source.bake_in_vae !== "None";
  const data = {
    gyoza: 1,
    inputs,
    steps: { merge: step },
    output: {
      path: options.outputPath ?? `${customName ?? "imported"}.safetensors`,
      dtype: tool === "a1111" && source.save_as_half !== true ? "fp32" : "fp16",
      prune: tool === "a1111" && String(source.discard_weights ?? "") === "model_ema",
      // Both tools merge the VAE like any other BASE tensor unless one is baked in.
      vae: bake ? { policy: "bake", file: source.bake_in_vae } : { policy: "merge", slot: "BASE" },
      metadata: "full",
      ...(customName ? { title: customName } : {}),
    },
  };
  if (bake)
    lost("bake_in_vae", "the VAE is recorded by name only: check output.vae.file points at it", false);
  return {
    tool,
    recipe: recipeFromData(data, { sourceName: `${options.file ?? "metadata"} (imported sd_merge_recipe)` }),
    notCarried,
  };
}

/** A gyoza merge's own recipe, with inputs pointed at searched files and paths that were withheld filled in. */
function extractGyozaRecipe(embedded: Record<string, unknown>, options: ImportOptions): ImportedRecipe {
  const data = structuredClone(embedded) as {
    inputs?: Record<string, Record<string, unknown>>;
    output?: Record<string, unknown>;
  };
  const notCarried: NotCarried[] = [];
  for (const [name, input] of Object.entries(data.inputs ?? {})) {
    const known = { sha256: input.sha256 as string | undefined, autov3: input.autov3 as string | undefined };
    const found = options.index?.find(known, true)[0]?.path;
    if (found) input.path = found;
    else if (typeof input.path !== "string") {
      input.path = `${name}.safetensors`;
      notCarried.push({
        field: `inputs.${name}.path`,
        value: undefined,
        reason: "the file was written with metadata: hashes, so the path was not recorded (the hashes were)",
        changesResult: false,
      });
    }
  }
  if (options.outputPath && data.output) data.output.path = options.outputPath;
  const recipe = recipeFromData(data, { sourceName: `${options.file ?? "metadata"} (gyoza_recipe)` });
  return { tool: "gyoza", recipe, notCarried };
}

/** Opens a file and imports its `sd_merge_recipe`, finding inputs by sha256 under `searchDirs`. */
export async function importMergeRecipeFromFile(
  path: string,
  options: { searchDirs?: readonly string[]; hashCacheDir?: string | false; outputPath?: string } = {},
): Promise<ImportedRecipe> {
  const checkpoint = await openCheckpoint(path);
  const metadata = { ...checkpoint.metadata };
  await checkpoint.close();
  const index = options.searchDirs?.length
    ? await HashIndex.build(options.searchDirs, {
        ...(options.hashCacheDir !== undefined ? { cacheDir: options.hashCacheDir } : {}),
      })
    : undefined;
  return importMergeRecipe(metadata, {
    file: path,
    ...(index ? { index } : {}),
    ...(options.outputPath ? { outputPath: options.outputPath } : {}),
  });
}

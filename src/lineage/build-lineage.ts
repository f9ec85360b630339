import { basename } from "node:path";
import { hashFile } from "../hash/index.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { ProgressListener } from "../progress.js";
import {
  asObject,
  describeMergeRecipe,
  type MergeModelEntry,
  type MergeTool,
  mergeModels,
  mergeRecipeParents,
  mergeRecipeTool,
  summarizeMechaRecipe,
} from "./merge-recipes.js";
import { type FileMatch, HashIndex, type KnownHashes } from "./search-by-hash.js";

/** A merge-of-merges rarely goes past a dozen generations; deeper is a loop the hashes did not reveal. */
export const MAX_LINEAGE_DEPTH = 32;
/** The same ancestor can appear under many parents (a DAG drawn as a tree): cap the drawing. */
export const MAX_LINEAGE_NODES = 2_000;

/** One model in a merge tree: the file itself at the root, its ancestors below. */
export interface LineageNode {
  /** File name as recorded (or the file's own name at the root); null when only hashes are known. */
  name: string | null;
  /** Its role in the merge that used it: a recipe input name, "A"/"B"/"C", or "baked VAE". */
  role?: string;
  hashes: KnownHashes;
  /** How this model was made, when a record of it exists. */
  merge?: { tool: MergeTool; summary: string };
  parents: LineageNode[];
  /** Files under the search folders carrying one of its hashes. */
  found?: FileMatch[];
  /** Why the tree stops here: a hash seen above (cycle), too deep, or too many nodes. */
  cut?: "cycle" | "depth" | "size";
}

interface BuildState {
  models: Map<string, MergeModelEntry>;
  nodes: number;
}

/** The merge tree recorded in a file's `__metadata__` (gyoza, A1111, supermerger, sd-mecha). */
export function lineageFromMetadata(
  root: { name: string; hashes: KnownHashes },
  metadata: Readonly<Record<string, string>>,
): LineageNode {
  const state: BuildState = { models: mergeModels(metadata), nodes: 1 };
  const node: LineageNode = { name: root.name, hashes: root.hashes, parents: [] };
  const seen = new Set(root.hashes.sha256 ? [root.hashes.sha256] : []);
  const gyoza = asObject(metadata.gyoza_recipe);
  const mergeRecipe = asObject(metadata.sd_merge_recipe);
  if (gyoza) {
    node.merge = { tool: "gyoza", summary: describeGyozaSteps(gyoza) };
    for (const [role, value] of Object.entries(asObject(gyoza.inputs) ?? {})) {
      const input = asObject(value) ?? {};
      const sha256 = typeof input.sha256 === "string" ? input.sha256.toLowerCase() : undefined;
      const autov3 = typeof input.autov3 === "string" ? input.autov3.toLowerCase() : undefined;
      const recorded = typeof input.path === "string" ? basename(input.path.replace(/\\/g, "/")) : null;
      const name = recorded ?? (sha256 ? state.models.get(sha256)?.name : null) ?? null;
      const parent = ancestor(name, { ...(sha256 ? { sha256 } : {}), ...(autov3 ? { autov3 } : {}) }, role);
      node.parents.push(expand(parent, state, seen, 1));
    }
    const vae = asObject(asObject(gyoza.output)?.vae);
    if (vae?.policy === "bake" && typeof vae.file === "string") {
      node.parents.push(ancestor(basename(vae.file.replace(/\\/g, "/")), {}, "baked VAE"));
    }
  } else if (mergeRecipe) {
    node.merge = { tool: mergeRecipeTool(mergeRecipe), summary: describeMergeRecipe(mergeRecipe) };
    node.parents = parentsOf(mergeRecipe, state, seen, 1);
  } else if (metadata.mecha_recipe !== undefined) {
    const mecha = summarizeMechaRecipe(metadata.mecha_recipe);
    node.merge = {
      tool: "sd-mecha",
      summary: `sd-mecha: ${mecha.operations.join(" → ") || "no operations"}`,
    };
    node.parents = mecha.models.map((path) => ancestor(basename(path.replace(/\\/g, "/")), {}, "model"));
  }
  return node;
}

function ancestor(name: string | null, hashes: KnownHashes, role?: string): LineageNode {
  return { name, ...(role ? { role } : {}), hashes, parents: [] };
}

function parentsOf(
  recipe: Record<string, unknown>,
  state: BuildState,
  seen: ReadonlySet<string>,
  depth: number,
): LineageNode[] {
  const roles = ["A", "B", "C"];
  return mergeRecipeParents(recipe).map((sha256, index) => {
    const entry = state.models.get(sha256);
    const hashes: KnownHashes = { sha256, ...(entry?.legacyHash ? { legacyHash: entry.legacyHash } : {}) };
    return expand(ancestor(entry?.name ?? null, hashes, roles[index]), state, seen, depth);
  });
}

/** Adds what `sd_merge_models` knows about how a parent was made, recursively. */
function expand(node: LineageNode, state: BuildState, seen: ReadonlySet<string>, depth: number): LineageNode {
  const sha256 = node.hashes.sha256;
  const recipe = sha256 ? state.models.get(sha256)?.recipe : undefined;
  if (!sha256 || !recipe) return node;
  if (seen.has(sha256)) return { ...node, cut: "cycle" };
  if (depth >= MAX_LINEAGE_DEPTH) return { ...node, cut: "depth" };
  const parents = mergeRecipeParents(recipe);
  if (state.nodes + parents.length > MAX_LINEAGE_NODES) return { ...node, cut: "size" };
  state.nodes += parents.length;
  node.merge = { tool: mergeRecipeTool(recipe), summary: describeMergeRecipe(recipe) };
  node.parents = parentsOf(recipe, state, new Set([...seen, sha256]), depth + 1);
  return node;
}

/** "final = weighted_sum(a: texture, b: base, alpha COSINE)" for each step of a gyoza recipe. */
function describeGyozaSteps(recipe: Record<string, unknown>): string {
  const steps = Object.entries(asObject(recipe.steps) ?? {}).map(([name, value]) => {
    const step = asObject(value) ?? {};
    const inputs = Object.entries(asObject(step.inputs) ?? {}).map(
      ([slot, from]) => `${slot}: ${String(from)}`,
    );
    const weights = ["alpha", "beta"]
      .filter((param) => step[param] !== undefined)
      .map(
        (param) =>
          `${param} ${typeof step[param] === "object" ? JSON.stringify(step[param]) : String(step[param])}`,
      );
    return `${name} = ${String(step.method)}(${[...inputs, ...weights].join(", ")})`;
  });
  return `gyoza: ${steps.join("; ")}`;
}

/** Marks every node with the searched files that carry one of its hashes. */
export function attachMatches(node: LineageNode, index: HashIndex): LineageNode {
  const found = index.find(node.hashes);
  return {
    ...node,
    ...(found.length > 0 ? { found } : {}),
    parents: node.parents.map((parent) => attachMatches(parent, index)),
  };
}

export interface ReadLineageOptions {
  /** Folders whose model files are matched to ancestors by any hash. */
  searchDirs?: readonly string[];
  hashCacheDir?: string | false;
  onProgress?: ProgressListener;
}

/** Reads a file's merge tree: its own hashes, its recorded ancestors, and local files matching them. */
export async function readLineage(path: string, options: ReadLineageOptions = {}): Promise<LineageNode> {
  const checkpoint = await openCheckpoint(path);
  const metadata = { ...checkpoint.metadata };
  await checkpoint.close();
  const cache = options.hashCacheDir !== undefined ? { cacheDir: options.hashCacheDir } : {};
  const own = await hashFile(path, { algorithms: ["sha256", "autov3"], ...cache });
  const tree = lineageFromMetadata(
    {
      name: basename(path),
      hashes: { sha256: own.sha256!.toLowerCase(), autov3: own.autoV3Full!.toLowerCase() },
    },
    metadata,
  );
  if (!options.searchDirs?.length) return tree;
  const index = await HashIndex.build(options.searchDirs, {
    ...cache,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return attachMatches(tree, index);
}

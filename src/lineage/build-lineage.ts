import { basename } from "node:path";
import { AUTOMIX_METADATA_KEY, type AutomixOrigin, readAutomixOrigin } from "../automix/automix-origin.js";
import { hashFile } from "../hash/index.js";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { ProgressListener } from "../progress.js";
import { describeGyozaStep, describeGyozaSteps, outputStep, ownField } from "./gyoza-steps.js";
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

/** How a model (or a recipe step) was made. */
export interface LineageMerge {
  tool: MergeTool;
  summary: string;
  /** For a gyoza recipe step: its name, method and weights (alpha, beta, other parameters) as recorded. */
  step?: string;
  method?: string;
  weights?: Record<string, unknown>;
}

/**
 * One model in a merge tree: the file itself at the root, its ancestors below. A step of a gyoza
 * recipe that the merge computed without writing it (GyozaMix's composition) is a node too.
 */
export interface LineageNode {
  /** File name as recorded (or the file's own name at the root); null when only hashes are known, or for a step. */
  name: string | null;
  /**
   * Its role in the merge that used it: a recipe input or step name, "A"/"B"/"C" (A1111),
   * "input 1"… (the first inputs of a gyoza merge known only from `sd_merge_models`), or "baked VAE".
   */
  role?: string;
  /** Set for a recipe step computed inside the merge (no file of its own): the step's name. */
  step?: string;
  hashes: KnownHashes;
  /** How this model was made, when a record of it exists. */
  merge?: LineageMerge;
  parents: LineageNode[];
  /** Files under the search folders carrying one of its hashes. */
  found?: FileMatch[];
  /** Why the tree stops here: a hash seen above (cycle), too deep, or too many nodes. */
  cut?: "cycle" | "depth" | "size";
  /** The automix study trial the file is the best candidate of (its `gyoza_automix`; the root only). */
  automix?: AutomixOrigin;
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
  const automix = readAutomixOrigin(metadata[AUTOMIX_METADATA_KEY]);
  if (automix) node.automix = automix;
  const seen = new Set(root.hashes.sha256 ? [root.hashes.sha256] : []);
  const gyoza = asObject(metadata.gyoza_recipe);
  const mergeRecipe = asObject(metadata.sd_merge_recipe);
  if (gyoza) {
    growGyozaRecipe(node, gyoza, state, seen);
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

/**
 * The recorded recipe as the merge ran it: the output step's merge on `node`, each step's inputs
 * below it, an earlier step as a node of its own with its inputs below (GyozaMix: final ← texture,
 * composition ← anime_detail, composition_model). Without steps, the inputs hang under `node` directly.
 */
function growGyozaRecipe(
  node: LineageNode,
  recipe: Record<string, unknown>,
  state: BuildState,
  seen: ReadonlySet<string>,
): void {
  const inputs = asObject(recipe.inputs) ?? {};
  const steps = asObject(recipe.steps) ?? {};
  const output = outputStep(steps, asObject(recipe.output));
  const inputNode = (role: string, depth: number): LineageNode => {
    const input = asObject(ownField(inputs, role));
    if (!input) return ancestor(null, {}, role);
    const sha256 = typeof input.sha256 === "string" ? input.sha256.toLowerCase() : undefined;
    const autov3 = typeof input.autov3 === "string" ? input.autov3.toLowerCase() : undefined;
    const recorded = typeof input.path === "string" ? basename(input.path.replace(/\\/g, "/")) : null;
    const name = recorded ?? (sha256 ? state.models.get(sha256)?.name : null) ?? null;
    const parent = ancestor(name, { ...(sha256 ? { sha256 } : {}), ...(autov3 ? { autov3 } : {}) }, role);
    return expand(parent, state, seen, depth);
  };
  if (!output) {
    node.merge = { tool: "gyoza", summary: describeGyozaSteps(recipe) };
    node.parents = Object.keys(inputs).map((role) => inputNode(role, 1));
    return;
  }
  const stepParents = (step: Record<string, unknown>, trail: readonly string[]): LineageNode[] =>
    Object.values(asObject(step.inputs) ?? {}).map((value) => {
      const ref = String(value);
      const used = asObject(ownField(steps, ref));
      const depth = trail.length;
      if (!used) return inputNode(ref, depth);
      const stepNode: LineageNode = { name: null, role: ref, step: ref, hashes: {}, parents: [] };
      if (trail.includes(ref)) return { ...stepNode, cut: "cycle" };
      if (depth >= MAX_LINEAGE_DEPTH) return { ...stepNode, cut: "depth" };
      const count = Object.keys(asObject(used.inputs) ?? {}).length;
      if (state.nodes + count > MAX_LINEAGE_NODES) return { ...stepNode, cut: "size" };
      state.nodes += count;
      const merge = { tool: "gyoza" as const, ...describeGyozaStep(ref, used) };
      return { ...stepNode, merge, parents: stepParents(used, [...trail, ref]) };
    });
  const top = asObject(ownField(steps, output))!;
  state.nodes += Object.keys(asObject(top.inputs) ?? {}).length;
  node.merge = { tool: "gyoza", ...describeGyozaStep(output, top) };
  node.parents = stepParents(top, [output]);
}

function parentsOf(
  recipe: Record<string, unknown>,
  state: BuildState,
  seen: ReadonlySet<string>,
  depth: number,
): LineageNode[] {
  // gyoza's sd_merge_recipe names its first three recipe inputs, not the A/B/C of one step
  const roles = mergeRecipeTool(recipe) === "gyoza" ? ["input 1", "input 2", "input 3"] : ["A", "B", "C"];
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
  const tool = mergeRecipeTool(recipe);
  // gyoza's A1111-style record keeps the last step and the first three inputs: say so
  const partial = tool === "gyoza" ? " (last step only: every step is in that file's own gyoza_recipe)" : "";
  node.merge = { tool, summary: `${describeMergeRecipe(recipe)}${partial}` };
  node.parents = parentsOf(recipe, state, new Set([...seen, sha256]), depth + 1);
  return node;
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
  return growFoundGyozaMerges(attachMatches(tree, index), index, { nodes: countNodes(tree) });
}

/**
 * Ancestors found on disk that are gyoza merges: the `sd_merge_models` entry of one keeps only its
 * last step and first three inputs, its own `gyoza_recipe` holds every step. Read that from the file.
 */
async function growFoundGyozaMerges(
  node: LineageNode,
  index: HashIndex,
  budget: { nodes: number },
  depth = 0,
): Promise<LineageNode> {
  let grown = node;
  const file = node.found?.[0]?.path;
  const flattened = node.merge?.tool === "gyoza" && node.merge.step === undefined;
  if (depth > 0 && depth < MAX_LINEAGE_DEPTH && file && flattened && budget.nodes < MAX_LINEAGE_NODES) {
    const metadata = await readMetadata(file);
    if (metadata?.gyoza_recipe !== undefined) {
      const own = lineageFromMetadata({ name: node.name ?? basename(file), hashes: node.hashes }, metadata);
      budget.nodes += countNodes(own) - countNodes(node);
      grown = {
        ...node,
        merge: own.merge!,
        parents: own.parents.map((parent) => attachMatches(parent, index)),
      };
    }
  }
  const parents: LineageNode[] = [];
  for (const parent of grown.parents)
    parents.push(await growFoundGyozaMerges(parent, index, budget, depth + 1));
  return { ...grown, parents };
}

/** A file's `__metadata__`, or null when it cannot be opened (the tree then keeps what it knew). */
async function readMetadata(path: string): Promise<Record<string, string> | null> {
  try {
    const checkpoint = await openCheckpoint(path);
    const metadata = { ...checkpoint.metadata };
    await checkpoint.close();
    return metadata;
  } catch {
    return null;
  }
}

function countNodes(node: LineageNode): number {
  return 1 + node.parents.reduce((sum, parent) => sum + countNodes(parent), 0);
}

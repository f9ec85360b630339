import { seedTheGraphRan } from "./comfyui.js";
import type { ComfyGraph } from "./comfyui-graph.js";
import { type GenerationInfo, toSeed } from "./generation-info.js";

/**
 * A1111's "draw a random seed" (`Seed: -1` in its UI); sites that write an A1111-style summary beside
 * their ComfyUI graph (Tensor.Art) keep the -1 there after drawing.
 */
const RANDOM_SEED = -1;

/**
 * When a summary (`parameters` infotext, a site's JSON) says the seed was -1 (random), the seed the
 * graph's sampler actually used is the one that reproduces the image: take it, and say so in `notes`.
 * `summaries` maps each summary's key to the seed it records.
 */
export function takeSeedTheGraphRan(
  info: GenerationInfo,
  graph: ComfyGraph,
  summaries: Record<string, unknown>,
): GenerationInfo {
  const random = Object.keys(summaries).filter((key) => toSeed(summaries[key]) === RANDOM_SEED);
  if (random.length === 0) return info;
  const ran = seedTheGraphRan(graph);
  if (ran === undefined || toSeed(ran.seed) === RANDOM_SEED) return info;
  info.seed = ran.seed;
  const says = random.length === 1 ? `${random[0]} says` : `${random.join(" and ")} say`;
  info.notes = [
    ...(info.notes ?? []),
    `seed: ${says} -1 (random); ${ran.seed} is the seed the ComfyUI graph's ${ran.classType} (node ${ran.node}) used`,
  ];
  return info;
}

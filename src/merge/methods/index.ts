import { addDelta } from "./add-delta.js";
import { addDifference } from "./add-difference.js";
import { addLora } from "./add-lora.js";
import { cosineA, cosineB } from "./cosine-merge.js";
import { dare } from "./dare.js";
import { geometricMedian } from "./geometric-median.js";
import type { MergeMethod, MethodRegistry } from "./merge-method.js";
import { modelStock } from "./model-stock.js";
import { slerp } from "./slerp.js";
import { subtract } from "./subtract.js";
import { sumTwice } from "./sum-twice.js";
import { ties } from "./ties.js";
import { trainDifference } from "./train-difference.js";
import { tripleSum } from "./triple-sum.js";
import { weightedSum } from "./weighted-sum.js";

export { checkSpaces, findMethod } from "./check-spaces.js";
export { combinedSimilarity, similarityRange } from "./cosine-similarity.js";
export type {
  FusionName,
  KernelOpName,
  MergeMethod,
  MergeSpace,
  MethodContext,
  MethodInput,
  MethodParam,
  MethodPrepass,
  MethodRegistry,
} from "./merge-method.js";

const all: readonly MergeMethod[] = [
  weightedSum,
  addDifference,
  tripleSum,
  sumTwice,
  trainDifference,
  cosineA,
  cosineB,
  subtract,
  addDelta,
  addLora,
  ties,
  dare,
  slerp,
  geometricMedian,
  modelStock,
];

/** The methods gyoza ships, by id. Pass it (or an extended copy) to whoever needs methods. */
export const builtinMethods: MethodRegistry = new Map(all.map((method) => [method.id, method]));

import { didYouMean, GyozaError } from "../../errors.js";
import { AutoMbw1 } from "./automb1.js";
import { CmaEs } from "./cma-es.js";
import {
  type Candidate,
  OPTIMIZER_NAMES,
  type Optimizer,
  type OptimizerEvent,
  type OptimizerName,
  type OptimizerOptions,
  type OptimizerSpace,
} from "./optimizer.js";
import { QuadraticTrustRegion } from "./quadratic-trust-region.js";
import { RandomSearch } from "./random-search.js";
import { Tpe } from "./tpe.js";

type OptimizerFactory = (space: OptimizerSpace, options: OptimizerOptions) => Optimizer;

const FACTORIES: Record<OptimizerName, OptimizerFactory> = {
  cmaes: (space, options) => new CmaEs(space, options),
  tpe: (space, options) => new Tpe(space, options),
  quadratic: (space, options) => new QuadraticTrustRegion(space, options),
  random: (space, options) => new RandomSearch(space, options),
  automb1: (space, options) => new AutoMbw1(space, options),
};

/** The optimizer `name` over `space`, seeded: the same seed and tells give the same candidates. */
export function createOptimizer(name: string, space: OptimizerSpace, options: OptimizerOptions): Optimizer {
  const factory = FACTORIES[name as OptimizerName];
  if (!factory) {
    const suggestion = didYouMean(name, OPTIMIZER_NAMES);
    throw new GyozaError("unknown-id", `there is no optimizer called "${name}"`, {
      fix: `use one of ${OPTIMIZER_NAMES.join(", ")}${suggestion ? ` (did you mean "${suggestion}"?)` : ""}`,
    });
  }
  if (!Number.isInteger(space.dimensions) || space.dimensions < 1)
    throw new GyozaError("usage", `a search space needs at least one free value, not ${space.dimensions}`);
  return factory(space, options);
}

/**
 * Resume: replays a study's recorded asks and tells, in order, into a freshly created optimizer
 * (same name, space and seed). Returns the candidates asked but never told (still pending), in
 * ask order. Throws when a replayed ask does not reproduce a recorded candidate's id, which means
 * the seed, space or optimizer changed since the study was recorded.
 */
export function replayOptimizer(optimizer: Optimizer, events: readonly OptimizerEvent[]): Candidate[] {
  const pending = new Map<number, Candidate>();
  for (const event of events) {
    if (event.kind === "ask") {
      for (const candidate of optimizer.ask(event.count)) pending.set(candidate.id, candidate);
      continue;
    }
    const results = event.results.map(({ id, score }) => {
      const candidate = pending.get(id);
      if (!candidate)
        throw new GyozaError(
          "usage",
          `the study's record tells trial ${id}, which the replayed optimizer never asked for`,
          {
            fix: "resume with the seed, search space and optimizer the study was started with",
          },
        );
      pending.delete(id);
      return { candidate, score };
    });
    optimizer.tell(results);
  }
  return [...pending.values()];
}

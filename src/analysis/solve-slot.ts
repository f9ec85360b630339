import { elementalRemainder } from "../merge/elemental.js";
import { fitAlpha, type KeyFit, squaredError } from "./key-fits.js";

/** Keys whose own α differs from their block's by less than this are taken as following the block. */
export const MIN_OVERRIDE_DELTA = 0.02;
/** A key's α must also stand this many standard errors away, so rounding noise in small tensors is not an override. */
const OVERRIDE_SIGMAS = 8;
/** Overridden keys whose α lie closer than this share one override value. */
const OVERRIDE_CLUSTER_WIDTH = 0.01;

/** Keys inside one block that follow their own weight: an elemental override. */
export interface DetectedOverride {
  /** An elemental pattern (supermerger syntax: space-separated alternatives) matching exactly these keys in the block. */
  readonly pattern: string;
  readonly value: number;
  readonly keys: readonly string[];
}

export interface SlotSolution {
  /** Least-squares α of the keys that follow the block (null when the parents are identical there). */
  readonly alpha: number | null;
  /** √(unexplained ‖M − A − α·d‖² / ‖d‖²) with the block α and the detected overrides. */
  readonly residual: number;
  readonly overrides: readonly DetectedOverride[];
  readonly keys: number;
  readonly elements: number;
}

/** σ of a key's α estimate: the spread of what its own fit leaves over ‖d‖. */
function alphaError(fit: KeyFit): number {
  const alpha = fitAlpha(fit);
  if (alpha === null) return Number.POSITIVE_INFINITY;
  const n = Math.max(1, fit.key.elements - 1);
  return Math.sqrt(squaredError(fit, alpha) / n / fit.direction);
}

/**
 * The α most of the block's keys agree on: the median of per-key α, counted by key, not by size
 * (an override such as `attn2` can hold most of a block's elements while naming few of its keys).
 */
function consensusAlpha(fits: readonly KeyFit[]): number | null {
  const alphas = fits
    .map(fitAlpha)
    .filter((alpha): alpha is number => alpha !== null)
    .sort((x, y) => x - y);
  return alphas.length > 0 ? alphas[Math.floor((alphas.length - 1) / 2)]! : null;
}

function pooledAlpha(fits: readonly KeyFit[]): number | null {
  let dot = 0;
  let direction = 0;
  for (const fit of fits) {
    dot += fit.dot;
    direction += fit.direction;
  }
  return direction > 0 ? dot / direction : null;
}

/**
 * Solves one block: its weight from the keys that agree, then keys that clearly follow another
 * weight grouped into elemental overrides with a pattern that names exactly them.
 */
export function solveSlot(fits: readonly KeyFit[], detectOverrides = true): SlotSolution {
  const consensus = consensusAlpha(fits);
  const deviating = (fit: KeyFit): boolean => {
    const alpha = fitAlpha(fit);
    if (!detectOverrides || alpha === null || consensus === null) return false;
    const delta = Math.abs(alpha - consensus);
    return delta > MIN_OVERRIDE_DELTA && delta > OVERRIDE_SIGMAS * alphaError(fit);
  };
  const followers = fits.filter((fit) => !deviating(fit));
  const outliers = fits.filter(deviating).sort((x, y) => fitAlpha(x)! - fitAlpha(y)!);
  const alpha = pooledAlpha(followers);
  const clusters: KeyFit[][] = [];
  for (const fit of outliers) {
    const last = clusters.at(-1);
    if (last && fitAlpha(fit)! - fitAlpha(last.at(-1)!)! < OVERRIDE_CLUSTER_WIDTH) last.push(fit);
    else clusters.push([fit]);
  }
  const overrides = clusters.map((cluster) => {
    const members = new Set(cluster.map((fit) => fit.key.key));
    const others = fits
      .filter((fit) => !members.has(fit.key.key))
      .map((fit) => elementalRemainder(fit.key.key));
    return {
      pattern: patternFor(
        cluster.map((fit) => elementalRemainder(fit.key.key)),
        others,
      ),
      value: pooledAlpha(cluster)!,
      keys: [...members],
    };
  });
  let error = 0;
  let direction = 0;
  for (const fit of followers) {
    error += squaredError(fit, alpha ?? 0);
    direction += fit.direction;
  }
  for (const [i, cluster] of clusters.entries()) {
    for (const fit of cluster) {
      error += squaredError(fit, overrides[i]!.value);
      direction += fit.direction;
    }
  }
  return {
    alpha,
    residual: residualOf(error, direction),
    overrides,
    keys: fits.length,
    elements: fits.reduce((sum, fit) => sum + fit.key.elements, 0),
  };
}

/** √(error / ‖d‖²); 0 when nothing changed, 1 (all unexplained) when the parents agree but M differs. */
export function residualOf(error: number, direction: number): number {
  if (direction > 0) return Math.sqrt(error / direction);
  return error > 0 ? 1 : 0;
}

const TRIVIAL_TOKENS = new Set(["weight", "bias", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);

/** Name pieces of a key remainder that a pattern could use: segments and runs of two (`attn2.to_out`). */
function candidateTokens(remainder: string): string[] {
  const parts = remainder.split(".");
  const tokens = new Set<string>();
  for (let i = 0; i < parts.length; i++) {
    if (!TRIVIAL_TOKENS.has(parts[i]!) && !/^\d+$/.test(parts[i]!)) tokens.add(parts[i]!);
    if (i + 1 < parts.length) tokens.add(`${parts[i]}.${parts[i + 1]}`);
  }
  return [...tokens];
}

/**
 * The shortest set of substrings that matches every key in `members` and none in `others`
 * (greedy cover, fewest alternatives first); falls back to the members' full remainders.
 */
export function patternFor(members: readonly string[], others: readonly string[]): string {
  const safe = new Set<string>();
  for (const member of members) {
    for (const token of candidateTokens(member)) {
      if (!others.some((other) => other.includes(token))) safe.add(token);
    }
  }
  const chosen: string[] = [];
  let uncovered = [...members];
  while (uncovered.length > 0) {
    let best: string | undefined;
    let bestCount = 0;
    for (const token of safe) {
      const count = uncovered.filter((member) => member.includes(token)).length;
      if (count > bestCount || (count === bestCount && best !== undefined && token.length < best.length)) {
        best = token;
        bestCount = count;
      }
    }
    if (!best) return members.join(" ");
    chosen.push(best);
    uncovered = uncovered.filter((member) => !member.includes(best));
  }
  return chosen.join(" ");
}

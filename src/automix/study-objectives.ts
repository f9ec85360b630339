import { basename } from "node:path";
import type { GenerationBackend, GenerationParams } from "../backends/types.js";
import { GyozaError } from "../errors.js";
import type { LibraryDatabase } from "../library/open-library.js";
import type { Recipe } from "../recipe/index.js";
import type { StageCandidate, StudyObjective } from "./evaluate-candidate.js";
import type { ResolvedStudy, StudyFileData } from "./study-file.js";

/**
 * A study's scorers, images and staging built from its settings: shared by `gyoza automix run`
 * (in-process) and `gyoza worker` (a distributed job rebuilds the same objectives from the study's
 * scorer specs), so a trial is scored the same way wherever it runs.
 */

export type ObjectiveSettings = ResolvedStudy["scorers"][number];

export interface BuiltObjectives {
  readonly objectives: StudyObjective[];
  /** Stops what was started for them (the stand-in HTTP scorer). */
  close(): Promise<void>;
}

export interface BuildObjectivesOptions {
  /** The library the study is recorded in: a manual scorer asks for and reads ratings there (refused without). */
  readonly db?: LibraryDatabase;
  /** A manual scorer's trial starts waiting for a rating (the CLI says where to give it). */
  readonly onWaiting?: (trial: { study: string; number: number; images: number }) => void;
}

/** Scorers from resolved scorer settings (paths absolute); `url: stand-in` starts the stand-in scorer. */
export async function buildObjectives(
  scorers: readonly ObjectiveSettings[],
  options: BuildObjectivesOptions = {},
): Promise<BuiltObjectives> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const closer of closers.splice(0)) await closer().catch(() => undefined);
  };
  try {
    const objectives: StudyObjective[] = [];
    for (const scorer of scorers) {
      if (scorer.type === "weights") {
        const { weightSpaceScorer } = await import("./scorers/weight-space.js");
        objectives.push({
          ...scorer,
          scorer: weightSpaceScorer({
            name: scorer.name,
            target: scorer.target,
            ...(scorer.blocks ? { blocks: scorer.blocks } : {}),
            ...(scorer.samples ? { samples: scorer.samples } : {}),
          }),
        });
      } else if (scorer.type === "onnx") {
        const { onnxScorer } = await import("./scorers/onnx-scorer.js");
        objectives.push({
          ...scorer,
          scorer: onnxScorer({
            name: scorer.name,
            model: scorer.model,
            ...(scorer.size ? { size: scorer.size } : {}),
            ...(scorer.normalize ? { normalize: scorer.normalize } : {}),
          }),
        });
      } else if (scorer.type === "http") {
        const { httpScorer } = await import("./scorers/http-scorer.js");
        let url = scorer.url;
        if (url === "stand-in") {
          const { startScorerStandIn } = await import("./scorers/standin-scorer.js");
          const standIn = await startScorerStandIn();
          closers.push(() => standIn.close());
          url = standIn.url;
        }
        objectives.push({
          ...scorer,
          scorer: httpScorer({
            name: scorer.name,
            url,
            ...(scorer.headers ? { headers: scorer.headers } : {}),
            ...(scorer.timeout !== undefined ? { timeoutSeconds: scorer.timeout } : {}),
            ...(scorer.retries !== undefined ? { retries: scorer.retries } : {}),
          }),
        });
      } else if (scorer.type === "manual") {
        const { manualScorer } = await import("./scorers/manual-scorer.js");
        objectives.push({
          ...scorer,
          scorer: manualScorer({
            name: scorer.name,
            db: options.db,
            ...(options.onWaiting ? { onWaiting: options.onWaiting } : {}),
          }),
        });
      } else {
        throw new GyozaError(
          "usage",
          `scorer "${(scorer as { name: string }).name}" (type ${(scorer as { type: string }).type}) cannot be built here`,
        );
      }
    }
    return { objectives, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** The images section of a study file without its backend and folder: what every candidate renders. */
export type ImageSettings = Omit<NonNullable<StudyFileData["images"]>, "backend" | "out">;

/** Generation settings for every image of a study, the study file's defaults filled in. */
export function imageParams(images: ImageSettings): Omit<GenerationParams, "prompt" | "seed"> {
  return {
    negativePrompt: images.negative ?? "",
    steps: images.steps ?? 20,
    cfg: images.cfg ?? 7,
    sampler: images.sampler ?? "Euler a",
    scheduler: images.scheduler ?? "Automatic",
    width: images.width ?? 512,
    height: images.height ?? 512,
    clipSkip: images.clip_skip ?? 1,
  };
}

/**
 * A `stage` for image studies: the candidate merged into the backend's model folder (stageCandidate:
 * reused by recipe key when already there), removed after scoring unless it was there before.
 */
export async function imageStage(
  backend: GenerationBackend,
  baseDir: string,
  hashCacheDir?: string | false,
): Promise<StageCandidate> {
  const { stageCandidate, cleanupCandidates } = await import("../preview/stage-candidate.js");
  return async (recipe: Recipe, _trial: number, signal: AbortSignal | undefined) => {
    const staged = await stageCandidate({
      backend,
      recipe,
      recipeBaseDir: baseDir,
      ...(hashCacheDir !== undefined ? { hashCacheDir } : {}),
      ...(signal ? { signal } : {}),
    });
    return {
      file: staged.file,
      checkpointName: staged.checkpointName,
      autov3: staged.autov3,
      ...(staged.recipeKey ? { recipeKey: staged.recipeKey } : {}),
      release: async () => {
        if (!staged.reused)
          await cleanupCandidates({
            folder: backend.config.modelFolder,
            only: [basename(staged.file)],
          }).catch(() => undefined);
      },
    };
  };
}

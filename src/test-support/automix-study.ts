import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type RunStudyResult, runStudy, trialImagePath } from "../automix/run-study.js";
import { manualScorer } from "../automix/scorers/manual-scorer.js";
import { SearchSpace } from "../automix/search-space.js";
import { StandInBackend } from "../automix/standin-backend.js";
import { createStudy, getStudy, recordTrial, type StoredStudy } from "../automix/study-store.js";
import { writeFileAtomically } from "../io/atomic-file.js";
import { type LibraryDatabase, openLibrary } from "../library/open-library.js";
import { loadRecipe } from "../recipe/index.js";

/**
 * A demo study recorded in a library file through the study store (the calls runStudy makes), for
 * the automix route and browser tests: the automix demo's space and recipe, trials 0–4 (done 0.4,
 * failed, done 0.7, done 0.5, pending), trial 0 with one PNG in `<dir>/images-<name>`. With
 * `outside`, trial 0 also names two hostile images: a symlink to `outside/secret.png` and ../etc/passwd.
 */
export const DEMO_PNG = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
const EXAMPLES = join(import.meta.dirname, "../automix/examples");

export function recordDemoStudy(dir: string, libraryFile: string, name: string, outside?: string): void {
  const out = join(dir, `images-${name}`);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "t0.png"), DEMO_PNG);
  if (outside) {
    writeFileSync(join(outside, "secret.png"), "not for you");
    symlinkSync(join(outside, "secret.png"), join(out, "linked.png"));
  }
  const point = (v: number) => Array(14).fill(v);
  const image = (path: string) => ({ path, prompt: "a cat", seed: 1 });
  const db = openLibrary(libraryFile);
  try {
    const study = createStudy(db, {
      name,
      spaceYaml: readFileSync(join(EXAMPLES, "demo-space.yaml"), "utf8"),
      baseRecipe: readFileSync(join(EXAMPLES, "demo-recipe.yaml"), "utf8"),
      optimizer: "quadratic",
      seed: 7,
      settings: {
        budget: 10,
        spaceFile: join(EXAMPLES, "demo-space.yaml"),
        recipeFile: join(EXAMPLES, "demo-recipe.yaml"),
        images: { out },
      },
    });
    recordTrial(db, study.id, {
      number: 0,
      x: point(0.2),
      state: "done",
      score: 0.4,
      scores: { clip: { scores: [0.4], tally: 0.4 } },
      images: [
        image(join(out, "t0.png")),
        ...(outside ? [image(join(out, "linked.png")), image("../../../../etc/passwd")] : []),
      ],
      worker: "local",
    });
    recordTrial(db, study.id, { number: 1, x: point(0.9), state: "failed", error: "CUDA out of memory" });
    recordTrial(db, study.id, { number: 2, x: point(0.6), state: "done", score: 0.7 });
    recordTrial(db, study.id, { number: 3, x: point(0.3), state: "done", score: 0.5 });
    recordTrial(db, study.id, { number: 4, x: point(0.5), state: "pending" });
  } finally {
    db.close();
  }
}

/** A study with a manual scorer running in this process, on its own connection to the library. */
export interface ManualStudyRun {
  readonly study: StoredStudy;
  /** The study process's own connection (the server opens another). */
  readonly db: LibraryDatabase;
  /** Stops the run (as Ctrl-C does). */
  readonly controller: AbortController;
  /** runStudy's answer: settles when the budget is spent or the run is stopped. */
  readonly result: Promise<RunStudyResult>;
  /** Stops the run if it still runs, waits for it and closes the connection. */
  close(): Promise<void>;
}

/**
 * Starts (or with `resume`, continues) an in-process study whose one objective is a `type: manual`
 * scorer, as `gyoza automix run` would: the demo space and recipe, the random optimizer, the stand-in
 * backend rendering `seeds.length` images per trial into `<dir>/images-<name>` (images.out). The
 * candidate "merge" is a small file whose bytes follow the candidate's recipe, so each trial's images
 * differ without a real merge. The scorer polls every few ms, so tests wait little.
 */
export async function startManualStudy(
  dir: string,
  libraryFile: string,
  name: string,
  options: { budget?: number; seeds?: number[]; resume?: boolean } = {},
): Promise<ManualStudyRun> {
  const budget = options.budget ?? 2;
  const seeds = options.seeds ?? [1, 2];
  const out = join(dir, `images-${name}`);
  const models = join(dir, `models-${name}`);
  await mkdir(out, { recursive: true });
  await mkdir(models, { recursive: true });
  const spaceYaml = readFileSync(join(EXAMPLES, "demo-space.yaml"), "utf8");
  const baseRecipe = readFileSync(join(EXAMPLES, "demo-recipe.yaml"), "utf8");
  const db = openLibrary(libraryFile);
  const study = options.resume
    ? getStudy(db, name)
    : createStudy(db, {
        name,
        spaceYaml,
        baseRecipe,
        optimizer: "random",
        seed: 3,
        settings: {
          budget,
          spaceFile: join(EXAMPLES, "demo-space.yaml"),
          recipeFile: join(EXAMPLES, "demo-recipe.yaml"),
          images: { backend: "stand-in", prompts: ["a bowl of gyoza"], seeds, out },
          scorers: [{ name: "pick", type: "manual", weight: 1, tally: "mean" }],
        },
      });
  const controller = new AbortController();
  const result = runStudy({
    db,
    study,
    space: SearchSpace.parse(spaceYaml, join(EXAMPLES, "demo-space.yaml")),
    base: loadRecipe(baseRecipe, { sourceName: join(EXAMPLES, "demo-recipe.yaml") }),
    objectives: [
      { name: "pick", weight: 1, tally: "mean", scorer: manualScorer({ db, pollMs: 5, maxPollMs: 40 }) },
    ],
    images: {
      backend: new StandInBackend(models),
      prompts: ["a bowl of gyoza"],
      seeds,
      params: {
        negativePrompt: "",
        steps: 4,
        cfg: 5,
        sampler: "Euler",
        scheduler: "Automatic",
        width: 256,
        height: 256,
        clipSkip: 1,
      },
      write: async (trial, image, png) => {
        const path = trialImagePath(out, trial, 0, image.seed);
        await writeFileAtomically(path, png);
        return path;
      },
    },
    budget,
    stage: async (recipe, trial) => {
      const file = join(models, `candidate-${trial}.safetensors`);
      await writeFile(file, JSON.stringify(recipe.steps).repeat(64));
      return { file };
    },
    signal: controller.signal,
    worker: "in-process",
  });
  // a rejection is the test's to inspect; keep it from counting as unhandled meanwhile
  result.catch(() => undefined);
  return {
    study,
    db,
    controller,
    result,
    async close() {
      controller.abort();
      await result.catch(() => undefined);
      db.close();
    },
  };
}

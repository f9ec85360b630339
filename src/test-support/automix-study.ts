import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createStudy, recordTrial } from "../automix/study-store.js";
import { openLibrary } from "../library/open-library.js";

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

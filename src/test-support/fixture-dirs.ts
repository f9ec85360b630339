import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The folders of real files tests read; each ends with a slash, so `folder + name` is a path. */
export interface FixtureDirs {
  /** Checkpoints written by real torch.save, each with its `.expected.json`. */
  ckpt: string;
  /** Images written by the web UIs, each with its `.expected.json`. */
  images: string;
  /** The reference presets and block lists (`presets/`, `model-configs/`). */
  reference: string;
}

const REPO_FIXTURES = fileURLToPath(new URL("../../test/fixtures/", import.meta.url));

/**
 * The copies in test/fixtures when `corpus` is undefined, else the corpus they were taken from
 * (`fixtures/ckpt`, `fixtures/images` and `reference` under `corpus`).
 */
export function fixtureDirs(corpus: string | undefined): FixtureDirs {
  const fixtures = corpus === undefined ? REPO_FIXTURES : join(corpus, "fixtures");
  return {
    ckpt: join(fixtures, "ckpt/"),
    images: join(fixtures, "images/"),
    reference: join(corpus ?? REPO_FIXTURES, "reference/"),
  };
}

/**
 * What the tests read: `npm test` the copies in test/fixtures (one file per case the suite needs, so a
 * fresh clone passes on its own); `npm run test:corpus` (vitest.corpus.config.ts) sets GYOZA_CORPUS_DIR
 * to the full corpus, and the same tests then run over every file there.
 */
export const FIXTURE_DIRS: FixtureDirs = fixtureDirs(process.env.GYOZA_CORPUS_DIR);

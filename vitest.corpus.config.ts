import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * `npm run test:corpus`: the tests that read real files run again over the full fixture corpus (every
 * image, checkpoint and reference file; `npm test` reads the subset copied into test/fixtures), with
 * the *.corpus.test.ts checks that the copies and the generated layouts still match it. The corpus is
 * ../shared beside the repository, or the folder GYOZA_CORPUS_DIR names.
 */
const corpus = process.env.GYOZA_CORPUS_DIR ?? fileURLToPath(new URL("../shared/", import.meta.url));
for (const needed of ["fixtures/ckpt", "fixtures/images", "reference"]) {
  if (!existsSync(join(corpus, needed))) {
    throw new Error(
      `test:corpus needs the fixture corpus, but ${join(corpus, needed)} does not exist; ` +
        "put the corpus at ../shared or set GYOZA_CORPUS_DIR (npm test needs neither)",
    );
  }
}

export default defineConfig({
  test: {
    include: [
      "src/**/*.corpus.test.ts",
      // Every test that reads test/fixtures through src/test-support/fixture-dirs.ts.
      "src/image/read-image-metadata.test.ts",
      "src/image/detect-generation.test.ts",
      "src/image/stealth-pnginfo.test.ts",
      "src/image/infotext.test.ts",
      "src/image/carry-metadata.test.ts",
      "src/image/fuzz.test.ts",
      "src/io/torch/open-torch-checkpoint.test.ts",
      "src/io/torch/parse-torch-file.test.ts",
      "src/io/torch/malicious-fixtures.test.ts",
      "src/io/torch/fuzz.test.ts",
      "src/engine/convert-checkpoint.test.ts",
      "src/engine/execute-merge.test.ts",
      "src/lineage/civitai-facts.test.ts",
      "src/merge/block-map.test.ts",
      "src/merge/presets.test.ts",
      "src/recipe/reference-check.test.ts",
    ],
    testTimeout: 60_000,
    pool: "forks",
    env: { GYOZA_CORPUS_DIR: corpus },
  },
});

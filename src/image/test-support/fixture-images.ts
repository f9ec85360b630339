import { readdirSync, readFileSync } from "node:fs";
import { FIXTURE_DIRS } from "../../test-support/fixture-dirs.js";

/** The image fixtures (one per generator and container in test/fixtures/images; every one in the corpus). */
export const FIXTURE_IMAGE_DIR = FIXTURE_DIRS.images;

export interface FixtureImage {
  stem: string;
  path: string;
  expected: {
    file: string;
    generator: string;
    container: string;
    width: number;
    height: number;
    derived: boolean;
    chunks: Record<string, string>;
    problems: string[];
    stealth_pnginfo?: { text: string } | null;
  };
  upstream?: Record<string, unknown>;
}

export function fixtureImages(): FixtureImage[] {
  return readdirSync(FIXTURE_IMAGE_DIR)
    .filter((name) => name.endsWith(".expected.json") && !name.endsWith(".upstream-expected.json"))
    .sort()
    .map((name) => {
      const stem = name.slice(0, -".expected.json".length);
      const expected = JSON.parse(readFileSync(FIXTURE_IMAGE_DIR + name, "utf8"));
      let upstream: Record<string, unknown> | undefined;
      try {
        upstream = JSON.parse(readFileSync(`${FIXTURE_IMAGE_DIR}${stem}.upstream-expected.json`, "utf8"));
      } catch {
        upstream = undefined;
      }
      return { stem, path: FIXTURE_IMAGE_DIR + expected.file, expected, upstream };
    });
}

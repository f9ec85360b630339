import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename } from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURE_DIRS, fixtureDirs } from "./fixture-dirs.js";

/** Every file below `dir`, as a path relative to it. */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((name) => statSync(dir + name).isFile())
    .sort();
}

const copies = fixtureDirs(undefined);

describe("the fixtures copied into test/fixtures", () => {
  it("are compared with the corpus, not with themselves", () => {
    for (const kind of ["ckpt", "images", "reference"] as const)
      expect(FIXTURE_DIRS[kind]).not.toBe(copies[kind]);
  });

  it.each(["ckpt", "images", "reference"] as const)(
    "hold the same bytes as the corpus's %s files of the same name",
    (kind) => {
      // The images' and the reference's READMEs describe the subset, so they differ from the corpus's.
      const names = filesBelow(copies[kind]).filter(
        (name) => kind === "ckpt" || basename(name) !== "README.md",
      );
      expect(names.length).toBeGreaterThan(0);
      for (const name of names)
        expect(readFileSync(copies[kind] + name).equals(readFileSync(FIXTURE_DIRS[kind] + name)), name).toBe(
          true,
        );
    },
  );

  it("include every checkpoint fixture of the corpus", () => {
    expect(filesBelow(copies.ckpt)).toEqual(filesBelow(FIXTURE_DIRS.ckpt));
  });
});

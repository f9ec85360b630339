import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildDemoLibrary, DEMO_MODEL, type DemoLibrary } from "../../demo/build-demo-library.js";
import { readMetadataOf, textsByKey } from "../../image/index.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

let dir = "";
useTempDirWithHashCache("gyoza-page-cli-", (path) => (dir = path));
let demo: DemoLibrary;

beforeAll(async () => {
  demo = await buildDemoLibrary(join(dir, "demo"), {
    size: "micro",
    imagesPerVersion: 1,
    imageSize: [128, 192],
  });
}, 120_000);

describe("gyoza page", () => {
  it("writes a library model's page and, with --json, says what it wrote", async () => {
    const out = join(dir, "page-json");
    const run = await runCli("page", DEMO_MODEL, "--library", demo.libraryPath, "-o", out, "--json");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const written = JSON.parse(run.stdout);
    expect(written.model).toBe(DEMO_MODEL);
    expect(written.page).toBe(join(out, "index.html"));
    expect(written.versions).toEqual([
      { name: "v2", files: 2, images: 1 },
      { name: "v1", files: 1, images: 1 },
    ]);
    const html = await readFile(written.page, "utf8");
    for (const file of demo.data.versions.flatMap((version) => version.files)) {
      expect(html).toContain(file.hashes.SHA256!);
    }
    for (const image of written.images) {
      expect(image.thumbnail).toMatch(/^thumbnails\/.*\.webp$/);
      const copied = await readFile(join(out, image.original));
      const metadata = await readMetadataOf({ bytes: copied, name: image.original });
      expect(textsByKey(metadata.texts).parameters).toContain("Model hash: ");
    }
  });

  it("writes one version's page for MODEL@VERSION and prints where it went", async () => {
    const out = join(dir, "page-v1");
    const run = await runCli("page", `${DEMO_MODEL}@v1`, "--library", demo.libraryPath, "-o", out);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`wrote ${join(out, "index.html")}`);
    expect(run.stdout).toContain(`${DEMO_MODEL}: v1 (1 files, 1 images)`);
  });

  it("refuses an existing folder without --replace and replaces it with", async () => {
    const out = join(dir, "page-replace");
    expect((await runCli("page", DEMO_MODEL, "--library", demo.libraryPath, "-o", out)).code).toBe(0);
    const again = await runCli("page", DEMO_MODEL, "--library", demo.libraryPath, "-o", out);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/folder is not empty[\s\S]*--replace/);
    const replaced = await runCli("page", DEMO_MODEL, "--library", demo.libraryPath, "-o", out, "--replace");
    expect(replaced.code).toBe(0);
  });

  it("names an unknown model and a missing library without writing anything", async () => {
    const unknown = await runCli(
      "page",
      "NoSuchModel",
      "--library",
      demo.libraryPath,
      "-o",
      join(dir, "nope"),
    );
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/NoSuchModel/);
    const missing = await runCli(
      "page",
      DEMO_MODEL,
      "--library",
      join(dir, "none.db"),
      "-o",
      join(dir, "nope"),
    );
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain("no library at");
    expect(existsSync(join(dir, "nope"))).toBe(false);
    expect(existsSync(join(dir, "none.db"))).toBe(false);
  });
});

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseStudyFile, readStudyFile } from "../../automix/study-file.js";
import { createStudy, recordTrial } from "../../automix/study-store.js";
import { openCheckpoint } from "../../io/open-checkpoint.js";
import { LibraryStore, modelPage } from "../../library/index.js";
import { openLibrary } from "../../library/open-library.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";
import { linearHeadModel } from "../../test-support/tiny-onnx.js";

let dir = "";
useTempDirWithHashCache("gyoza-automix-cli-", (path) => (dir = path));

const OUT_TARGET =
  "0.5,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.5,0.9,0.9,0.9,0.8,0.8,0.8,0.6,0.6,0.6,0.2,0.2,0.2";

async function writeStudy(budget: number): Promise<string> {
  for (const [name, seed] of [
    ["a", "1"],
    ["b", "2"],
  ] as const)
    expect(
      (await runCli("synth", join(dir, `${name}.safetensors`), "--size", "micro", "--seed", seed)).code,
    ).toBe(0);
  const merged = await runCli(
    "merge",
    join(dir, "a.safetensors"),
    join(dir, "b.safetensors"),
    "--alpha",
    OUT_TARGET,
    "-o",
    join(dir, "target.safetensors"),
  );
  expect(merged.code).toBe(0);
  // the demo's recipe, space and study with paths pointing into the temp dir
  const examples = join(import.meta.dirname, "../../automix/examples");
  const recipe = (await readFile(join(examples, "demo-recipe.yaml"), "utf8")).replaceAll(
    "../../../demo-out/automix/",
    "",
  );
  await writeFile(join(dir, "demo-recipe.yaml"), recipe);
  await writeFile(join(dir, "demo-space.yaml"), await readFile(join(examples, "demo-space.yaml")));
  const study = (await readFile(join(examples, "demo-study.yaml"), "utf8"))
    .replaceAll("../../../demo-out/automix/", "")
    .replace("budget: 24", `budget: ${budget}`);
  await writeFile(join(dir, "head.onnx"), linearHeadModel({ size: 16, weights: [1, 1, 1], bias: 0 }));
  await writeFile(
    join(dir, "demo-study.yaml"),
    `${study}  - { name: aesthetic, type: onnx, model: head.onnx, weight: 0.01 }\n`,
  );
  return join(dir, "demo-study.yaml");
}

describe("gyoza automix", () => {
  it("runs the demo study end to end (stand-in backend; weight-space, HTTP stand-in and tiny ONNX scorers), shows it, writes the best recipe, and resumes a finished study without repeating a trial", {
    timeout: 120_000,
  }, async () => {
    const file = await writeStudy(6);
    const library = join(dir, "library.db");
    const run = await runCli("automix", "run", file, "--library", library, "--json");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ study: "demo", status: "finished", trials: 6, evaluated: 6, failed: 0 });
    expect(summary.best.score).toBeLessThan(0);

    const show = await runCli("automix", "show", "demo", "--library", library, "--json");
    expect(show.code).toBe(0);
    const report = JSON.parse(show.stdout);
    expect(report.done).toBe(6);
    expect(report.best[0].score).toBe(summary.best.score);
    expect(report.best[0].scores["like-target"].scores).toHaveLength(1);
    expect(report.best[0].scores.brightness.scores).toHaveLength(2);
    expect(report.best[0].images).toHaveLength(2);
    expect(report.best[0].scores.aesthetic.scores).toHaveLength(2);
    expect(report.importance).toHaveLength(14);

    const best = await runCli(
      "automix",
      "best",
      "demo",
      "--library",
      library,
      "--out",
      join(dir, "best.yaml"),
    );
    expect(best.code).toBe(0);
    const recipe = await readFile(join(dir, "best.yaml"), "utf8");
    expect(recipe).toContain(
      `description: gyoza automix study "demo" (tpe, seed 7), trial ${summary.best.trial}`,
    );
    // the best recipe merges to the AutoV3 the trial recorded
    const again = await runCli(
      "merge",
      join(dir, "best.yaml"),
      "-o",
      join(dir, "best.safetensors"),
      "--json",
    );
    expect(again.code).toBe(0);
    expect(JSON.stringify(JSON.parse(again.stdout))).toContain(report.best[0].autov3);

    const twice = await runCli("automix", "run", file, "--library", library);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain("gyoza automix resume demo");
    const resumed = await runCli("automix", "resume", "demo", "--library", library, "--json");
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.stdout)).toMatchObject({ trials: 6, evaluated: 0 });
  });

  it("merges the best candidate with --merge: the file names the study and trial, the library lists the version with that provenance (after a rescan too), and a plain merge of the written recipe gives the same AutoV3", {
    timeout: 120_000,
  }, async () => {
    const file = await writeStudy(3);
    // its own library: the first test's holds a "demo" study already
    const library = join(dir, "merge-library.db");
    const run = await runCli("automix", "run", file, "--library", library, "--json");
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout);
    const model = join(dir, "models", "best.safetensors");
    const best = await runCli(
      "automix",
      "best",
      "demo",
      "--library",
      library,
      "--out",
      join(dir, "best.yaml"),
      "-o",
      model,
      "--mkdir",
      "--json",
    );
    expect(best.code, best.stderr).toBe(0);
    const result = JSON.parse(best.stdout);
    expect(result).toMatchObject({ study: "demo", trial: summary.best.trial, model: { file: model } });
    expect(result.model.version).toBe("best");

    const origin = {
      study: "demo",
      trial: summary.best.trial,
      score: summary.best.score,
      optimizer: "tpe",
      seed: 7,
    };
    const checkpoint = await openCheckpoint(model);
    const metadata = { ...checkpoint.metadata };
    await checkpoint.close();
    expect(JSON.parse(metadata.gyoza_automix!)).toEqual(origin);
    const lineage = await runCli("lineage", model);
    expect(lineage.code, lineage.stderr).toBe(0);
    expect(lineage.stdout).toContain(
      `from automix study "demo", trial ${origin.trial}, score ${origin.score}`,
    );

    const versionOf = () => {
      const db = openLibrary(library);
      try {
        const page = modelPage(new LibraryStore(db), result.model.model);
        return page.versions.find((v) => v.name === "best");
      } finally {
        db.close();
      }
    };
    expect(versionOf()?.automix).toEqual(origin);
    expect((await runCli("library", "scan", "--library", library)).code).toBe(0);
    expect(versionOf()?.automix).toEqual(origin);

    // same recipe → same weights: the written recipe, merged the plain way, gives the same tensor data
    const plain = await runCli(
      "merge",
      join(dir, "best.yaml"),
      "-o",
      join(dir, "plain.safetensors"),
      "--json",
    );
    expect(plain.code, plain.stderr).toBe(0);
    expect(JSON.parse(plain.stdout).dataSha256).toBe(result.model.autov3);
    expect(result.model.autov3).toMatch(/^[0-9a-f]{64}$/);
  });

  it("refuses a study file with an unknown field, a bad name or an http scorer without images, naming the place", () => {
    const base =
      "automix-study: 1\nname: s\nrecipe: r.yaml\nspace: s.yaml\nbudget: 3\nscorers:\n  - { type: weights, target: t.safetensors }\n";
    expect(() => parseStudyFile(`${base}budgte: 4\n`, "/x/study.yaml")).toThrow(/unknown field "budgte"/);
    expect(() => parseStudyFile(base.replace("name: s", "name: ../evil"), "/x/study.yaml")).toThrow(
      /name: a study name/,
    );
    expect(() =>
      parseStudyFile(`${base}  - { type: http, url: "http://127.0.0.1:1/" }\n`, "/x/study.yaml"),
    ).toThrow(/scores images: the study needs an images: section/);
    expect(() =>
      parseStudyFile("automix-study: 1\n".repeat(1) + "x".repeat(200_000), "/x/study.yaml"),
    ).toThrow(/at most/);
  });

  it("reads the shipped demo study with its paths made absolute", async () => {
    const study = await readStudyFile(join(import.meta.dirname, "../../automix/examples/demo-study.yaml"));
    expect(study).toMatchObject({ name: "demo", optimizer: "tpe", budget: 24, batch: 1 });
    expect(study.scorers.map((s) => [s.name, s.weight, s.tally])).toEqual([
      ["like-target", 1, "mean"],
      ["brightness", 0.05, "geometric"],
    ]);
    expect(study.recipeFile.endsWith("/src/automix/examples/demo-recipe.yaml")).toBe(true);
  });

  it("shows a distributed study that has no stored search space, labelling its coordinates by index", async () => {
    const library = join(dir, "distributed-library.db");
    const db = openLibrary(library);
    const study = createStudy(db, {
      name: "spread",
      spaceYaml: "",
      baseRecipe: "null",
      optimizer: "random",
      seed: 7,
      settings: { distributed: true, budget: 3, inFlight: 2 },
    });
    recordTrial(db, study.id, { number: 0, x: [0.1, 0.9], state: "done", score: -0.5, worker: "gpu-a" });
    recordTrial(db, study.id, { number: 1, x: [0.4, 0.6], state: "done", score: -0.1, worker: "gpu-b" });
    db.close();
    const show = await runCli("automix", "show", "spread", "--library", library, "--json");
    expect(show.code).toBe(0);
    const report = JSON.parse(show.stdout);
    expect(report.study).toMatchObject({ name: "spread", budget: 3 });
    expect(report.best[0]).toMatchObject({ number: 1, worker: "gpu-b", weights: "x0=0.4000 x1=0.6000" });
    expect(report.importance.map((entry: { label: string }) => entry.label).sort()).toEqual(["x0", "x1"]);
    const text = await runCli("automix", "show", "spread", "--library", library);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/study spread \(running\): random, seed 7, 2\/3 trials/);
  });
});

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AutomixStudyView } from "../../server/automix-api.js";
import { createServer, type GyozaServer } from "../../server/create-server.js";
import { runCli } from "../../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../../test-support/temp-dir.js";

/**
 * `gyoza automix run` with a `type: manual` scorer: the CLI's study waits on its own library
 * connection while gyoza serve's app, on another, takes a person's ratings; each one lets the study
 * go on, and the CLI says where to give them.
 */
let dir = "";
useTempDirWithHashCache("gyoza-automix-manual-cli-", (path) => (dir = path));
let server: GyozaServer;
const library = () => join(dir, "library.db");

async function writeStudy(name: string, images: string): Promise<string> {
  const examples = join(import.meta.dirname, "../../automix/examples");
  const recipe = (await readFile(join(examples, "demo-recipe.yaml"), "utf8")).replaceAll(
    "../../../demo-out/automix/",
    "",
  );
  await writeFile(join(dir, "demo-recipe.yaml"), recipe);
  await writeFile(join(dir, "demo-space.yaml"), await readFile(join(examples, "demo-space.yaml")));
  const file = join(dir, `${name}.yaml`);
  await writeFile(
    file,
    `automix-study: 1\nname: ${name}\nrecipe: demo-recipe.yaml\nspace: demo-space.yaml\noptimizer: random\nseed: 7\nbudget: 2\nwork: work-${name}\n${images}scorers:\n  - { name: pick, type: manual }\n`,
  );
  return file;
}

beforeAll(async () => {
  for (const [name, seed] of [
    ["a", "1"],
    ["b", "2"],
  ] as const)
    expect(
      (await runCli("synth", join(dir, `${name}.safetensors`), "--size", "micro", "--seed", seed)).code,
    ).toBe(0);
  server = await createServer({ library: library(), roots: [dir] });
}, 60_000);

afterAll(async () => {
  await server?.close();
});

async function pendingTrial(name: string, trial: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const answer = await server.app.inject({
      url: `/api/automix/studies/${name}`,
      headers: { authorization: `Bearer ${server.token}` },
    });
    if (
      answer.statusCode === 200 &&
      (answer.json() as AutomixStudyView).pendingRatings.some((p) => p.trial === trial)
    )
      return;
    if (Date.now() > deadline) throw new Error(`trial ${trial} never awaited a rating`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function rate(name: string, trial: number, body: unknown) {
  return server.app.inject({
    method: "POST",
    url: `/api/automix/studies/${name}/trials/${trial}/rating`,
    headers: { authorization: `Bearer ${server.token}`, "content-type": "application/json" },
    payload: JSON.stringify(body),
  });
}

describe("gyoza automix run with a manual scorer", () => {
  it("waits for each trial's rating given through gyoza serve, then finishes with the tallied scores", {
    timeout: 120_000,
  }, async () => {
    const file = await writeStudy(
      "by-hand",
      "images: { backend: stand-in, prompts: [a bowl of gyoza], seeds: [1, 2], steps: 4, width: 256, height: 256, out: images }\n",
    );
    const run = runCli("automix", "run", file, "--library", library(), "--json");
    await pendingTrial("by-hand", 0);
    expect((await rate("by-hand", 0, { best: 1 })).statusCode).toBe(200);
    await pendingTrial("by-hand", 1);
    expect((await rate("by-hand", 1, { scores: [2, 4] })).statusCode).toBe(200);
    const result = await run;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /trial 0 waits for your rating of its 2 images: gyoza serve --library .*study by-hand/,
    );
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({
      study: "by-hand",
      status: "finished",
      trials: 2,
      evaluated: 2,
      failed: 0,
    });
    expect(summary.best).toMatchObject({ trial: 1, score: 3 });
  });

  it("refuses a manual scorer in a study that keeps no images, before the study starts", async () => {
    const file = await writeStudy("no-out", "images: { backend: stand-in, prompts: [a], seeds: [1] }\n");
    const result = await runCli("automix", "run", file, "--library", library());
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(
      /a manual scorer shows each trial's images in gyoza serve: the study must keep them/,
    );
  });
});

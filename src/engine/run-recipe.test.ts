import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GyozaError } from "../errors.js";
import { loadKernel } from "../kernels/index.js";
import type { ProgressEvent } from "../progress.js";
import { recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { runRecipe } from "./run-recipe.js";

let dir: string;
let a: string;
let b: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-run-recipe-"));
  a = join(dir, "a.safetensors");
  b = join(dir, "b.safetensors");
  // tiny models: several MB, hundreds of chunks, so an abort lands mid-merge
  await writeSyntheticCheckpoint(a, { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed: 1 });
  await writeSyntheticCheckpoint(b, { layout: "sd1-ldm", size: "tiny", dtype: "F16", seed: 2 });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function mergeRecipe(inputA: string, inputB: string, output: string) {
  return recipeFromData(
    {
      gyoza: 1,
      inputs: { a: { path: inputA }, b: { path: inputB } },
      steps: { mix: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: 0.5 } },
      output: { path: output, metadata: "none" },
    },
    { sourceName: "test" },
  );
}

const sha256 = async (path: string) =>
  createHash("sha256")
    .update(await readFile(path))
    .digest("hex");

describe("runRecipe with an AbortSignal", () => {
  it.each(["out.safetensors", "out.ckpt"])(
    "stops a merge aborted mid-way (%s): rejects as interrupted, leaves no output and no temp file, inputs untouched",
    async (name) => {
      const before = [await sha256(a), await sha256(b)];
      const outDir = join(dir, `aborted-${name}`);
      await mkdir(outDir);
      const controller = new AbortController();
      const events: ProgressEvent["type"][] = [];
      const stopped = runRecipe(mergeRecipe(a, b, join(outDir, name)), {
        kernel: await loadKernel(),
        onProgress: (event) => {
          events.push(event.type);
          if (event.type === "advance") controller.abort(new Error("the user pressed stop"));
        },
        signal: controller.signal,
      });
      const error = await stopped.then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(GyozaError);
      expect((error as GyozaError).code).toBe("interrupted");
      expect(((error as GyozaError).cause as Error).message).toBe("the user pressed stop");
      // mid-merge: it had started writing and never finished
      expect(events[0]).toBe("start");
      expect(events).toContain("advance");
      expect(events).not.toContain("finish");
      expect(await readdir(outDir)).toEqual([]);
      expect([await sha256(a), await sha256(b)]).toEqual(before);
    },
  );

  it("rejects at once when the signal is already aborted, before any input is opened", async () => {
    const missing = join(dir, "no-such-model.safetensors");
    const outDir = join(dir, "aborted-before");
    await mkdir(outDir);
    await expect(
      runRecipe(mergeRecipe(missing, missing, join(outDir, "out.safetensors")), {
        signal: AbortSignal.abort(),
      }),
    ).rejects.toMatchObject({ name: "GyozaError", code: "interrupted" });
    expect(await readdir(outDir)).toEqual([]);
  });

  it("merges to the end when the signal is never aborted", async () => {
    const output = join(dir, "whole.safetensors");
    const result = await runRecipe(mergeRecipe(a, b, output), {
      kernel: await loadKernel(),
      signal: new AbortController().signal,
    });
    expect(result.output).toBe(output);
    expect((await readFile(output)).byteLength).toBe(result.bytes);
  });
});

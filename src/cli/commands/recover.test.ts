import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { runCli } from "../../test-support/run-cli.js";

const gyoza = runCli;

let dir: string;
const path = (name: string) => join(dir, name);
const weights = [0.1, ...Array.from({ length: 25 }, (_, i) => Number((0.1 + (0.8 * i) / 24).toFixed(3)))];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gyoza-cli-recover-"));
  for (const [name, seed] of [
    ["a", 1],
    ["b", 2],
    ["u", 3],
  ] as const)
    await writeSyntheticCheckpoint(path(`${name}.safetensors`), {
      layout: "sd1-ldm",
      size: "micro",
      dtype: "F16",
      seed,
    });
  const merged = await gyoza(
    "merge",
    path("a.safetensors"),
    path("b.safetensors"),
    "--alpha",
    weights.join(","),
    "-o",
    path("m.safetensors"),
    "--metadata",
    "none",
    "--json",
  );
  expect(merged.code).toBe(0);
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("gyoza recover, diff, parents", { timeout: 120_000 }, () => {
  it("recover --json maps every slot name to its α and emits a recipe", async () => {
    const { code, stdout } = await gyoza(
      "recover",
      path("m.safetensors"),
      "--from",
      path("a.safetensors"),
      path("b.safetensors"),
      "--json",
      "--recipe",
      path("rebuilt.yaml"),
    );
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as {
      alpha: Record<string, number>;
      explained: boolean;
      recipe: string;
    };
    expect(Object.keys(result.alpha)).toHaveLength(26);
    expect(Object.keys(result.alpha)[0]).toBe("BASE");
    Object.values(result.alpha).forEach((alpha, i) => {
      expect(Math.abs(alpha - weights[i]!)).toBeLessThan(2e-3);
    });
    expect(result.explained).toBe(true);
    expect(await readFile(path("rebuilt.yaml"), "utf8")).toBe(result.recipe);
  });

  it("recover says NOT explained for an unrelated model", async () => {
    const { code, stdout } = await gyoza(
      "recover",
      path("u.safetensors"),
      "--from",
      path("a.safetensors"),
      path("b.safetensors"),
    );
    expect(code).toBe(0);
    expect(stdout).toContain("NOT explained");
  });

  it("recover refuses a single parent as a usage error", async () => {
    const { code, stderr } = await gyoza("recover", path("m.safetensors"), "--from", path("a.safetensors"));
    expect(code).toBe(2);
    expect(stderr).toContain("two parents");
  });

  it("diff prints a table and writes an SVG plot", async () => {
    const { code, stdout } = await gyoza(
      "diff",
      path("a.safetensors"),
      path("m.safetensors"),
      "--plot",
      path("plot.svg"),
    );
    expect(code).toBe(0);
    expect(stdout).toMatch(/^BASE\s+0\.\d+/m);
    expect(stdout).toMatch(/^vae\s+1\.000000\s+0\.00000\s+100%/m);
    expect(await readFile(path("plot.svg"), "utf8")).toContain("<svg");
  });

  it("parents finds the two parents among the files of a folder", async () => {
    const { code, stdout } = await gyoza(
      "parents",
      path("m.safetensors"),
      "--search",
      dir,
      "--json",
      "--samples",
      "20000",
    );
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { pairs: { a: string; b: string; explained: boolean }[] };
    expect([result.pairs[0]!.a, result.pairs[0]!.b].sort()).toEqual([
      path("a.safetensors"),
      path("b.safetensors"),
    ]);
    expect(result.pairs[0]!.explained).toBe(true);
  });
});

import { describe, expect, it } from "vitest";
import { runCli } from "../../test-support/run-cli.js";

const gyoza = (...args: string[]) => runCli(...args);

describe("gyoza presets", () => {
  it("prints every SD1 preset as name → 26 numbers, BASE first, with --json", async () => {
    const { code, stdout } = await gyoza("presets", "--json");
    expect(code).toBe(0);
    const presets = JSON.parse(stdout) as Record<string, number[]>;
    expect(Object.keys(presets)).toHaveLength(38);
    expect(presets.COSINE).toHaveLength(26);
    expect(presets.COSINE!.slice(0, 2)).toEqual([0, 1]);
    expect(presets.ALL_B![0]).toBe(1);
  });

  it("prints the SDXL table, translated SD1-only presets included, with --family sdxl", async () => {
    const { code, stdout } = await gyoza("presets", "--family", "sdxl", "--json");
    expect(code).toBe(0);
    const presets = JSON.parse(stdout) as Record<string, number[]>;
    expect(presets.COSINE).toHaveLength(20);
    expect(presets.ALL_B).toEqual(new Array(20).fill(1));
  });

  it("prints a table with one row per preset", async () => {
    const { code, stdout } = await gyoza("presets");
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("sd1 presets: BASE | IN00..OUT11 (25 values)");
    expect(lines).toHaveLength(39);
    expect(stdout).toMatch(/^REVERSE_COSINE +0 \| 0 0\.004 0\.017 /m);
  });

  it("rejects an unknown family with did-you-mean and a usage exit code", async () => {
    const { code, stderr } = await gyoza("presets", "--family", "sdxk");
    expect(code).toBe(2);
    expect(stderr).toContain('did you mean "sdxl"?');
  });
});

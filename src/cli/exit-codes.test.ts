import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { runCli } from "../test-support/run-cli.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";

let dir: string;
useTempDirWithHashCache("gyoza-cli-exit-", (path) => {
  dir = path;
});

let model = "";
let truncated = "";
let notAModel = "";
beforeAll(async () => {
  model = join(dir, "m.safetensors");
  await writeSyntheticCheckpoint(model, { layout: "sd1-ldm", size: "micro", dtype: "F16", seed: 1 });
  const bytes = await readFile(model);
  truncated = join(dir, "cut.safetensors");
  await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
  notAModel = join(dir, "notes.txt");
  await writeFile(notAModel, "not a checkpoint");
});

/** Text that says the implementation leaked through instead of the user's words. */
const INTERNALS = [/NaN/, /Invalid input/, /received/, /steps\.merge\./, /ENOTDIR|ENOENT/, /at .*\.ts:\d+/];

// Exit codes (README): 0 ok, 1 the operation failed, 2 the command line is wrong.
const usageMistakes: [string, () => string[], RegExp][] = [
  ["an unknown command", () => ["mrege"], /unknown command/],
  [
    "merge --dtype fp8",
    () => ["merge", model, model, "--dtype", "fp8", "-o", join(dir, "o.safetensors")],
    /--dtype: "fp8"/,
  ],
  [
    "convert --dtype fp8",
    () => ["convert", model, join(dir, "o.safetensors"), "--dtype", "fp8"],
    /--dtype: "fp8"/,
  ],
  ["synth --dtype fp8", () => ["synth", join(dir, "s.safetensors"), "--dtype", "fp8"], /--dtype: "fp8"/],
  [
    "synth --size small",
    () => ["synth", join(dir, "s.safetensors"), "--size", "small"],
    /--size: "small" is not one of full, tiny, micro/,
  ],
  [
    "merge --base abc",
    () => ["merge", model, model, "--base", "abc", "-o", join(dir, "o.safetensors")],
    /--base: "abc" is not a number/,
  ],
  [
    "merge --seed 1.5",
    () => ["merge", model, model, "--seed", "1.5", "-o", join(dir, "o.safetensors")],
    /--seed/,
  ],
  ["merge without -o", () => ["merge", model, model], /needs an output file/],
  [
    "merge into a folder that does not exist",
    () => ["merge", model, model, "-o", join(dir, "no", "o.safetensors")],
    /output folder .* does not exist/,
  ],
  [
    "convert into a path under a file",
    () => ["convert", model, join(model, "o.safetensors")],
    /is a file, not a folder/,
  ],
  [
    "recover with the merged model after --from",
    () => ["recover", "--from", model, model, model],
    /name it before --from/,
  ],
  ["replay without --search", () => ["replay", model], /--search/],
];

const failedOperations: [string, () => string[], RegExp][] = [
  ["inspect of a missing file", () => ["inspect", join(dir, "missing.safetensors")], /no such file/],
  [
    "inspect of a truncated file",
    () => ["inspect", truncated],
    /truncated[\s\S]*download or copy the file again/,
  ],
  [
    "merge of a truncated file",
    () => ["merge", truncated, model, "-o", join(dir, "o.safetensors")],
    /truncated/,
  ],
  ["hash of a missing file", () => ["hash", join(dir, "missing.bin")], /no such file/],
  ["inspect of a text file", () => ["inspect", notAModel], /not a safetensors or PyTorch checkpoint/],
];

describe("exit codes and messages", () => {
  it.each(usageMistakes)("exits 2 with a plain message for %s", async (_, args, message) => {
    const { code, stderr } = await runCli(...args());
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    for (const leak of INTERNALS) expect(stderr).not.toMatch(leak);
  });

  it.each(failedOperations)("exits 1 with a plain message for %s", async (_, args, message) => {
    const { code, stderr } = await runCli(...args());
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
    for (const leak of INTERNALS) expect(stderr).not.toMatch(leak);
  });

  it("exits 0 for a command that works", async () => {
    expect((await runCli("inspect", model)).code).toBe(0);
  });
});

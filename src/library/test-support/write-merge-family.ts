import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makePngTextChunk, replacePngMetadata } from "../../image/png-writer.js";
import { writeSyntheticCheckpoint } from "../../synth/write-synthetic.js";
import { runCli } from "../../test-support/run-cli.js";

/** The files `writeMergeFamily` writes, by role. */
export const MERGE_FAMILY = {
  parentA: "anime-base.safetensors",
  parentB: "photo-base.safetensors",
  /** anime-base × photo-base, titled "Silicon-29". */
  child: "silicon-29.safetensors",
  /** silicon-29 × photo-base, titled "Gyoza Grand". */
  grandchild: "gyoza-grand.safetensors",
} as const;

/** A small PNG (the real A1111 sample from test/fixtures/images) with its `parameters` text replaced. */
export async function writeInfotextPng(path: string, parameters: string): Promise<void> {
  const source = await readFile(
    join(import.meta.dirname, "../../../test/fixtures/images/a1111_derived_easy-reforge_lora_hashes_png.png"),
  );
  await writeFile(path, replacePngMetadata(source, [makePngTextChunk("parameters", parameters)]));
}

/**
 * Two micro SD 1.x checkpoints, a gyoza merge of them and a merge of that merge (each made by the
 * real `gyoza merge`, so their provenance is what gyoza writes), in `dir`.
 */
export async function writeMergeFamily(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = (name: string): string => join(dir, name);
  await writeSyntheticCheckpoint(path(MERGE_FAMILY.parentA), {
    layout: "sd1-ldm",
    size: "micro",
    dtype: "F16",
    seed: 11,
  });
  await writeSyntheticCheckpoint(path(MERGE_FAMILY.parentB), {
    layout: "sd1-ldm",
    size: "micro",
    dtype: "F16",
    seed: 12,
  });
  const merge = async (a: string, b: string, title: string, output: string): Promise<void> => {
    const run = await runCli(
      "merge",
      path(a),
      path(b),
      "--alpha",
      "0.3",
      "--title",
      title,
      "-o",
      path(output),
    );
    if (run.code !== 0) throw new Error(`gyoza merge failed: ${run.stderr}`);
  };
  await merge(MERGE_FAMILY.parentA, MERGE_FAMILY.parentB, "Silicon-29", MERGE_FAMILY.child);
  await merge(MERGE_FAMILY.child, MERGE_FAMILY.parentB, "Gyoza Grand", MERGE_FAMILY.grandchild);
}

/** Copies fixture images (by file name in test/fixtures/images) into `dir`. */
export async function copyFixtureImages(dir: string, names: readonly string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of names)
    await copyFile(join(import.meta.dirname, "../../../test/fixtures/images", name), join(dir, name));
}

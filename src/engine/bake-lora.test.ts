import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../io/open-checkpoint.js";
import { readTensorBytes } from "../io/read-tensor.js";
import type { Checkpoint } from "../io/tensor.js";
import { loadKernel } from "../kernels/index.js";
import { recipeFromData } from "../recipe/index.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { runRecipe } from "./run-recipe.js";
import { LORA_BAKE_CASES, loraBakeRecipe, writeLoraBakeInputs } from "./test-support/lora-bake-cases.js";

/** torch's bakes of the same cases (scripts/bake-lora-torch.py; test/fixtures/lora-bake/README.md). */
const EXPECTED = fileURLToPath(
  new URL("../../test/fixtures/lora-bake/expected.safetensors", import.meta.url),
);

let dir: string;
useTempDirWithHashCache("gyoza-bake-lora-", (path) => {
  dir = path;
});

beforeAll(async () => {
  await writeLoraBakeInputs(dir);
}, 60_000);

/** An f16 bit pattern as a position on the number line, so neighbours differ by 1 (±0 both 0). */
function f16Order(bits: number): number {
  return bits & 0x8000 ? -(bits & 0x7fff) : bits;
}

async function halves(checkpoint: Checkpoint, key: string): Promise<Uint16Array> {
  const bytes = await readTensorBytes(checkpoint.tensors.get(key)!);
  return new Uint16Array(bytes.slice().buffer);
}

/** Whether two arrays hold the same bits (a plain comparison: toEqual on big typed arrays is slow). */
function sameBits(a: Uint16Array, b: Uint16Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

describe("baking LoRAs matches torch", () => {
  for (const bakeCase of LORA_BAKE_CASES) {
    it(`bakes the ${bakeCase.name} case's LoRAs (${bakeCase.loras.map((l) => `${l.file} ×${l.ratio}`).join(", ")}) within one fp16 ulp of torch's fp32 math, and changes no other key`, async () => {
      const recipe = recipeFromData(loraBakeRecipe(bakeCase));
      // the reference kernel and the fastest one (native or wasm), which must agree bit for bit
      for (const kernel of ["js", "auto"] as const) {
        await runRecipe(
          { ...recipe, output: { ...recipe.output, path: `${kernel}-${bakeCase.output}` } },
          { baseDir: dir, kernel: await loadKernel(kernel) },
        );
      }
      const [expected, output, model] = await Promise.all([
        openCheckpoint(EXPECTED),
        openCheckpoint(`${dir}/auto-${bakeCase.output}`),
        openCheckpoint(`${dir}/${bakeCase.model.file}`),
      ]);
      const reference = await openCheckpoint(`${dir}/js-${bakeCase.output}`);
      try {
        const prefix = `${bakeCase.name}/`;
        const changed = [...expected.tensors.keys()].filter((key) => key.startsWith(prefix));
        expect(changed.length).toBeGreaterThan(0);
        let maxUlp = 0;
        let differing = 0;
        let elements = 0;
        for (const name of changed) {
          const key = name.slice(prefix.length);
          const [want, got, js] = await Promise.all([
            halves(expected, name),
            halves(output, key),
            halves(reference, key),
          ]);
          expect(sameBits(got, js), `${key}: every kernel gives the same bits`).toBe(true);
          expect(got.length, key).toBe(want.length);
          for (let i = 0; i < want.length; i++) {
            const ulp = Math.abs(f16Order(got[i]!) - f16Order(want[i]!));
            if (ulp > 0) differing++;
            maxUlp = Math.max(maxUlp, ulp);
          }
          elements += want.length;
        }
        console.info(
          `${bakeCase.name}: ${changed.length} baked weights, ${elements} elements; ${differing} differ from torch's, by at most ${maxUlp} fp16 ulp`,
        );
        expect(maxUlp).toBeLessThanOrEqual(1);
        const keys = new Set(changed.map((name) => name.slice(prefix.length)));
        const alsoChanged: string[] = [];
        for (const [key, tensor] of model.tensors) {
          if (keys.has(key) || tensor.dtype !== "F16") continue;
          if (!sameBits(await halves(output, key), await halves(model, key))) alsoChanged.push(key);
        }
        expect(alsoChanged).toEqual([]);
      } finally {
        await Promise.all([expected.close(), output.close(), model.close(), reference.close()]);
      }
    }, 60_000);
  }
});

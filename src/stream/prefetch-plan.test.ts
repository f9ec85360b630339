import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { openCheckpoint } from "../io/open-checkpoint.js";
import type { ByteRange } from "../io/prefetch-file.js";
import { planRecipe } from "../plan/plan-recipe.js";
import { recipeFromData } from "../recipe/index.js";
import { writeSyntheticCheckpoint } from "../synth/write-synthetic.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { convertedReads, isFrontToBack, plannedReads, prefetchOutOfOrderReads } from "./prefetch-plan.js";
import { inputOrderOf } from "./write-output.js";

let dir = "";
useTempDirWithHashCache("gyoza-prefetch-plan-", (path) => (dir = path));

const micro = { layout: "sd1-ldm", size: "micro", dtype: "F16" } as const;

beforeAll(async () => {
  for (const [name, seed] of [
    ["a", 1],
    ["b", 2],
  ] as const) {
    await writeSyntheticCheckpoint(join(dir, `${name}.safetensors`), { ...micro, seed });
    await writeSyntheticCheckpoint(join(dir, `${name}.ckpt`), { ...micro, seed }, "ckpt");
  }
});

async function planned(extension: "safetensors" | "ckpt") {
  const recipe = recipeFromData({
    gyoza: 1,
    inputs: { a: { path: `a.${extension}` }, b: { path: `b.${extension}` } },
    steps: { merged: { method: "weighted_sum", inputs: { a: "a", b: "b" }, alpha: "COSINE" } },
    output: { step: "merged", path: "out.safetensors" },
  });
  const result = await planRecipe(recipe, { baseDir: dir });
  await result.close(); // offsets and plans only: no byte is read here
  return result;
}

/** The order a safetensors output is written in for one dtype: by name. */
const byName = (keys: readonly { key: string }[]) => keys.map((k) => k.key).sort();

describe("plannedReads", () => {
  it("lists every tensor a merge reads from each file once, in the order the output takes them", async () => {
    const { plan, sources } = await planned("safetensors");
    const reads = plannedReads(plan, sources, byName(plan.keys));
    expect([...reads.keys()].sort()).toEqual([join(dir, "a.safetensors"), join(dir, "b.safetensors")]);
    const a = sources.get("a")!;
    const readsOfA = plan.keys.filter((k) => JSON.stringify(k.op).includes('"source":"a"')).length;
    expect(reads.get(join(dir, "a.safetensors"))).toHaveLength(readsOfA);
    const first = byName(plan.keys)[0]!;
    expect(reads.get(join(dir, "a.safetensors"))![0]).toEqual({
      offset: a.get(first)!.byteOffset,
      length: a.get(first)!.byteLength,
    });
    // a safetensors file is stored in the order its output is written: read front to back
    for (const ranges of reads.values()) expect(isFrontToBack(ranges)).toBe(true);
  });

  it("finds a torch file read out of its order for a safetensors output, and in order for a .ckpt output laid out like it", async () => {
    const { plan, sources, inputs } = await planned("ckpt");
    for (const ranges of plannedReads(plan, sources, byName(plan.keys)).values()) {
      expect(isFrontToBack(ranges)).toBe(false);
    }
    const layout = inputOrderOf(inputs[0]!.checkpoint.tensors);
    const asStored = byName(plan.keys).sort((x, y) => layout.get(x)! - layout.get(y)!);
    for (const ranges of plannedReads(plan, sources, asStored).values()) {
      expect(isFrontToBack(ranges)).toBe(true);
    }
  });
});

describe("prefetchOutOfOrderReads", () => {
  it("asks the kernel for the out-of-order files' bytes in the order the merge wants them, and nothing else", async () => {
    const asked = new Map<number, [number, number][]>();
    const readAhead = async (fd: number, offset: number, length: number) => {
      asked.set(fd, [...(asked.get(fd) ?? []), [offset, length]]);
    };
    const ckpt = await planned("ckpt");
    const order = byName(ckpt.plan.keys);
    const prefetches = prefetchOutOfOrderReads(plannedReads(ckpt.plan, ckpt.sources, order), readAhead);
    expect(prefetches).toHaveLength(2);
    await Promise.all(prefetches.map((prefetch) => prefetch.done));
    // the two files are laid out alike (same architecture, same writer): each file's requests start
    // at the first tensor the output takes (CLIP's, near the end of the file) and cover every
    // tensor the merge reads
    const a = ckpt.sources.get("a")!;
    expect(a.get(order[0]!)!.byteOffset).toBe(ckpt.sources.get("b")!.get(order[0]!)!.byteOffset);
    expect(asked.size).toBe(2);
    const reads = plannedReads(ckpt.plan, ckpt.sources, order);
    const [readsOfA, readsOfB] = [reads.get(join(dir, "a.ckpt"))!, reads.get(join(dir, "b.ckpt"))!];
    const covers = (calls: [number, number][], wanted: readonly ByteRange[]) =>
      wanted.every((read) =>
        calls.some(
          ([offset, length]) => offset <= read.offset && read.offset + read.length <= offset + length,
        ),
      );
    const [x, y] = [...asked.values()] as [[number, number][], [number, number][]];
    for (const calls of [x, y]) expect(calls[0]![0]).toBe(a.get(order[0]!)!.byteOffset);
    // (which descriptor is whose is not known: a weight of 0 or 1 reads one file only, so they differ)
    expect((covers(x, readsOfA) && covers(y, readsOfB)) || (covers(x, readsOfB) && covers(y, readsOfA))).toBe(
      true,
    );

    const safetensors = await planned("safetensors");
    const none = prefetchOutOfOrderReads(
      plannedReads(safetensors.plan, safetensors.sources, byName(safetensors.plan.keys)),
      readAhead,
    );
    expect(none).toHaveLength(0);
    expect(prefetchOutOfOrderReads(plannedReads(ckpt.plan, ckpt.sources, order), undefined)).toHaveLength(0);
  });
});

describe("convertedReads", () => {
  it("lists a converted file's tensors in the output's order, and none of tensors from elsewhere", async () => {
    const path = join(dir, "a.ckpt");
    const model = await openCheckpoint(path);
    try {
      const order = [...model.tensors.keys()].sort();
      const files = new Map([[path, model.tensors]]);
      const reads = convertedReads(model.tensors, files, order).get(path)!;
      expect(reads).toHaveLength(order.length);
      expect(reads[0]!.offset).toBe(model.tensors.get(order[0]!)!.byteOffset);
      expect(isFrontToBack(reads)).toBe(false);
      const stored = [...order].sort(
        (x, y) => model.tensors.get(x)!.byteOffset - model.tensors.get(y)!.byteOffset,
      );
      expect(isFrontToBack(convertedReads(model.tensors, files, stored).get(path)!)).toBe(true);
      // a tensor made for the output (a relayout's join) has no file range
      const made = new Map([[order[0]!, { ...model.tensors.get(order[0]!)! }]]);
      expect(convertedReads(made, files, order).size).toBe(0);
    } finally {
      await model.close();
    }
  });
});

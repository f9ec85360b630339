import type { MergeMethod, MethodContext } from "../methods/merge-method.js";

/** Runs a method on plain number arrays, filling defaults for params and context. */
export function runMethod(
  method: MergeMethod,
  inputs: readonly (readonly number[])[],
  params: Record<string, number> = {},
  context: Partial<MethodContext> = {},
): number[] {
  const arrays = inputs.map((values) => Float32Array.from(values));
  const out = new Float32Array(arrays[0]!.length);
  const resolved = Object.fromEntries(method.params.map((p) => [p.name, params[p.name] ?? p.default]));
  method.apply(arrays, resolved, out, {
    key: "model.diffusion_model.input_blocks.1.1.proj_in.weight",
    arithmetic: "fp32",
    seed: 0,
    elementOffset: 0,
    shape: [out.length],
    ...context,
  });
  return [...out];
}

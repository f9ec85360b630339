import { type DType, elementCount } from "../io/dtype.js";
import type { ComponentRule, TensorShapeInfo } from "./detect.js";

export interface ComponentSummary {
  name: string;
  tensors: number;
  parameters: number;
  bytes: number;
  /** Tensor count per dtype. */
  dtypes: Partial<Record<DType, number>>;
}

/** The component a key belongs to: the first rule whose prefix it starts with, else "other". */
export function componentOf(key: string, rules: readonly ComponentRule[]): string {
  for (const rule of rules) if (key.startsWith(rule.prefix)) return rule.name;
  return "other";
}

/** Splits a state dict into components (unet, text encoders, vae, ema, other) with parameter counts. */
export function summarizeComponents(
  tensors: ReadonlyMap<string, TensorShapeInfo & { byteLength?: number }>,
  rules: readonly ComponentRule[],
): ComponentSummary[] {
  const byName = new Map<string, ComponentSummary>();
  for (const [key, tensor] of tensors) {
    const name = componentOf(key, rules);
    let summary = byName.get(name);
    if (!summary) {
      summary = { name, tensors: 0, parameters: 0, bytes: 0, dtypes: {} };
      byName.set(name, summary);
    }
    const count = elementCount(tensor.shape);
    summary.tensors++;
    summary.parameters += count;
    summary.bytes += tensor.byteLength ?? 0;
    summary.dtypes[tensor.dtype] = (summary.dtypes[tensor.dtype] ?? 0) + 1;
  }
  const order = [...rules.map((r) => r.name), "other"];
  return [...byName.values()].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
}

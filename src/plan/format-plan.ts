import type { MergePlan, PlanOp } from "./merge-plan.js";

/** Which weight each slot of each step gives, and to how many keys: step → param → slot → value → keys. */
type WeightTable = Map<string, Map<string, Map<string, Map<number, number>>>>;

/**
 * A plan as a person reads it before spending minutes of disk: what is read, which steps run,
 * which block weight every step gives each slot (and to how many keys), what is copied, pruned,
 * reset or baked. `--plan --json` prints the plan itself.
 */
export function formatPlan(plan: MergePlan): string {
  const lines = [
    `plan (${plan.schema}): ${plan.architecture} → ${plan.output.path} (${plan.output.format}${plan.output.dtype ? `, ${plan.output.dtype}` : ""})`,
    "sources:",
    ...Object.entries(plan.sources).map(([name, path]) => `  ${name.padEnd(18)} ${path}`),
    "steps:",
    ...plan.steps.map((step) => {
      const loras = plan.loras
        .filter((lora) => lora.step === step.name)
        .map(
          (lora) =>
            ` + ${lora.source} ×${round(lora.ratio)}${lora.weights === "ALL" ? "" : ` [${lora.weights}]`}`,
        );
      return `  ${step.name} = ${step.method}(${step.inputs.join(", ")})${loras.join("")}${step.arithmetic === "lerp" ? " [lerp]" : ""}`;
    }),
  ];
  const ops = new Map<string, number>();
  const weights: WeightTable = new Map();
  for (const planned of plan.keys) {
    ops.set(planned.op.op, (ops.get(planned.op.op) ?? 0) + 1);
    collectWeights(planned.op, weights);
  }
  const counts = [...ops].sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${n}`);
  lines.push(`keys: ${plan.keys.length} written (${counts.join(", ")})`);
  if (weights.size > 0) lines.push("weights (slot value ×keys):");
  for (const step of plan.steps) {
    for (const [param, slots] of weights.get(step.name) ?? []) {
      const cells = [...slots]
        .sort((a, b) => slotRank(a[0]) - slotRank(b[0]))
        .map(([slot, values]) =>
          [...values].map(([value, keys]) => `${slot} ${round(value)}×${keys}`).join(" "),
        );
      lines.push(`  ${step.name}.${param}: ${cells.join("  ")}`);
    }
  }
  if (plan.loras.length > 0) lines.push("loras (ratio × block weight per slot, ×modules):");
  for (const lora of plan.loras) {
    const alpha = lora.alphaMissing ? `, ${lora.alphaMissing} without alpha` : "";
    lines.push(
      `  ${lora.step} + ${lora.source}: ${lora.base}, ${lora.modules} modules, rank ${lora.ranks.join("/")}${alpha}; ratio ${round(lora.ratio)}, weights ${lora.weights}`,
    );
    const cells = [...lora.slots]
      .sort((a, b) => slotRank(a.slot ?? "—") - slotRank(b.slot ?? "—"))
      .map(({ slot, weight, modules }) => `${slot ?? "other"} ${round(weight)}×${modules}`);
    lines.push(`    ${cells.join("  ")}`);
  }
  const { finishing } = plan;
  const vae = finishing.vae;
  lines.push(
    `finishing: ${finishing.pruned.length} pruned, ${finishing.positionIdsReset.length} position_ids reset to arange(77), VAE ${vae.policy}${vae.from ? ` from ${vae.from}` : ""} (${vae.keys} keys)`,
  );
  if (plan.onlyInLaterInputs.length)
    lines.push(
      `${plan.onlyInLaterInputs.length} keys only in a later input, copied from it (e.g. ${plan.onlyInLaterInputs[0]!.key})`,
    );
  for (const warning of plan.warnings) lines.push(`warning: ${warning.message}`);
  return `${lines.join("\n")}\n`;
}

function collectWeights(op: PlanOp, table: WeightTable): void {
  if (op.op === "read" || op.op === "arange") return;
  const slot = op.slot ?? "—";
  const add = (step: string, param: string, value: number) => {
    const params = table.get(step) ?? new Map();
    table.set(step, params);
    const slots = params.get(param) ?? new Map();
    params.set(param, slots);
    const values = slots.get(slot) ?? new Map<number, number>();
    slots.set(slot, values);
    values.set(value, (values.get(value) ?? 0) + 1);
  };
  if (op.op === "method") for (const [param, value] of Object.entries(op.params)) add(op.step, param, value);
  else if (op.op !== "add-lora") add(op.step, "alpha", op.alpha); // a LoRA's weights: the loras lines
  if (op.op === "nested-weighted-sum") add(op.innerStep, "alpha", op.innerAlpha);
  for (const arg of op.args) collectWeights(arg, table);
}

/** BASE, IN00…, M00, OUT00…, VAE: the order presets and supermerger list slots in. */
function slotRank(slot: string): number {
  const numbered = /^(IN|OUT)(\d+)$/.exec(slot);
  if (numbered) return (numbered[1] === "IN" ? 1 : 60) + Number(numbered[2]);
  return ({ BASE: 0, M00: 50, VAE: 99 } as Record<string, number>)[slot] ?? 100;
}

function round(value: number): string {
  return String(Number(value.toFixed(4)));
}

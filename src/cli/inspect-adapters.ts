import type { EmbeddingReport } from "../arch/embedding.js";
import type { InspectReport } from "../arch/inspect-checkpoint.js";
import type { LoraFormat, LoraReport } from "../arch/lora/inspect-lora.js";
import type { TrainingSummary } from "../arch/lora/training-metadata.js";

const FORMAT_NAMES: Readonly<Record<LoraFormat, string>> = {
  kohya: "kohya LoRA",
  "lycoris-locon": "LyCORIS LoCon",
  loha: "LyCORIS LoHa",
  lokr: "LyCORIS LoKr",
  peft: "diffusers PEFT LoRA",
  "lycoris-other": "LyCORIS (another algorithm)",
};

const ENCODER_NAMES: Readonly<Record<string, string>> = {
  clip_l: "CLIP-L",
  openclip_h: "OpenCLIP ViT-H",
  clip_g: "OpenCLIP bigG",
  unknown: "unknown encoder",
};

/** The `gyoza inspect` lines for a LoRA or an embedding (none for other files). */
export function adapterLines(report: InspectReport): string[] {
  return [
    ...(report.lora ? loraLines(report.lora) : []),
    ...(report.embedding ? embeddingLines(report.embedding) : []),
  ];
}

function loraLines(lora: LoraReport): string[] {
  const lines: string[] = [];
  const m = lora.modules;
  const groups = [
    ["unet", m.unet],
    ["text encoder", m.textEncoder],
    ["text encoder 2", m.textEncoder2],
  ].filter(([, count]) => count !== 0);
  const names = lora.unetNames ? `, ${lora.unetNames === "ldm" ? "ldm/sgm" : lora.unetNames} UNet names` : "";
  lines.push(
    `  lora          ${FORMAT_NAMES[lora.format]} (${lora.naming} key names${names}), ${m.total} modules: ${groups.map(([name, count]) => `${name} ${count}`).join(", ")}${m.convolutions > 0 ? ` (${plural(m.convolutions, "convolution")})` : ""}`,
  );
  const base = lora.base;
  const by = {
    shapes: "by module shapes",
    metadata: "by training metadata only",
    names: "by module names only",
    none: "",
  };
  lines.push(
    `    base model  ${base.name}${base.id === "unknown" ? "" : ` [${base.id}]`}${by[base.decidedBy] ? `, ${by[base.decidedBy]}` : ""}`,
  );
  for (const reason of base.evidence) lines.push(`                · ${reason}`);
  lines.push(`    rank        ${histogramText(lora.rank.values, m.total)}`);
  const scale = lora.scale === null ? "" : `, scale ${round(lora.scale)}`;
  lines.push(
    `    alpha       ${histogramText(lora.alpha.values, m.total)}${scale}${lora.alpha.missing > 0 ? ` (${lora.alpha.missing} missing: taken as rank)` : ""}`,
  );
  const t = lora.targets;
  const blocks = Object.entries(t.blocks)
    .sort(([a], [b]) => blockOrder(a) - blockOrder(b))
    .map(([block, count]) => `${block} ${count}`);
  if (t.textEncoder > 0) blocks.push(`text encoder ${t.textEncoder}`);
  if (t.textEncoder2 > 0) blocks.push(`text encoder 2 ${t.textEncoder2}`);
  if (base.id !== "unknown") {
    lines.push(
      `    targets     ${blocks.join(", ") || "none"}${t.unmapped > 0 ? `; ${plural(t.unmapped, "module")} without a target` : ""}`,
    );
  }
  for (const issue of lora.issues)
    lines.push(`    ${issue.severity === "error" ? "✗" : "!"} ${issue.message}`);
  if (lora.training) lines.push(...trainingLines(lora.training));
  return lines;
}

function trainingLines(t: TrainingSummary): string[] {
  const lines: string[] = [];
  const add = (text: string) =>
    lines.push(`${lines.length === 0 ? "  training      " : "                "}${text}`);
  const network = [
    t.networkModule,
    t.networkDim !== undefined ? `dim ${t.networkDim}` : undefined,
    t.networkAlpha !== undefined ? `alpha ${t.networkAlpha}` : undefined,
    t.networkArgs !== undefined ? `args ${JSON.stringify(t.networkArgs)}` : undefined,
  ].filter(Boolean);
  if (t.outputName) add(`output name ${t.outputName}`);
  if (network.length > 0) add(`network ${network.join(", ")}`);
  const model = [
    t.baseModelVersion,
    t.sdModelName ? `trained on ${t.sdModelName}` : undefined,
    t.sdModelHash ? `(${t.sdModelHash.slice(0, 12)})` : undefined,
  ].filter(Boolean);
  if (model.length > 0) add(`base ${model.join(" ")}`);
  const run = [
    t.epoch !== undefined ? `epoch ${t.epoch}${t.epochs !== undefined ? ` of ${t.epochs}` : ""}` : undefined,
    t.steps !== undefined ? `${t.steps} steps` : undefined,
    t.images !== undefined ? `${t.images} images` : undefined,
    t.resolution ? `resolution ${t.resolution}` : undefined,
    t.clipSkip !== undefined ? `clip skip ${t.clipSkip}` : undefined,
    t.learningRate !== undefined ? `lr ${t.learningRate}` : undefined,
    t.optimizer,
  ].filter(Boolean);
  if (run.length > 0) add(run.join(", "));
  if (t.startedAt || t.finishedAt) add(`trained ${t.startedAt ?? "?"} → ${t.finishedAt ?? "?"}`);
  if (t.trainingComment) add(`comment: ${t.trainingComment.replace(/\s+/g, " ").slice(0, 100)}`);
  if (t.tags) {
    const top = t.tags.top.map(({ tag, count }) => `${tag} ${count}`).join(", ");
    add(`tags (${plural(t.tags.folders, "folder")}, ${t.tags.distinct} distinct): ${top}`);
  }
  if (t.otherKeys.length > 0)
    add(`${plural(t.otherKeys.length, "more ss_* key")} (--json shows them in metadata)`);
  return lines;
}

function embeddingLines(e: EmbeddingReport): string[] {
  const encoders = e.encoders.map((x) => `${ENCODER_NAMES[x.encoder]} ${x.width}`).join(" + ");
  const base = { sd1: "SD 1.x", sd2: "SD 2.x", sdxl: "SDXL", unknown: "unknown base" }[e.base];
  const layout = {
    "a1111-pt": "A1111 .pt",
    emb_params: "emb_params safetensors",
    sdxl: "SDXL clip_l/clip_g",
  }[e.layout];
  const lines = [
    `  embedding     prompt token "${e.token}" (the file name), ${plural(e.vectors, "vector")}, ${base} (${encoders}), ${layout} layout`,
  ];
  const t = e.training;
  if (t) {
    const parts = [
      t.name ? `trained as "${t.name}"` : undefined,
      t.step !== undefined ? `step ${t.step}` : undefined,
      t.sdCheckpointName || t.sdCheckpoint
        ? `on ${t.sdCheckpointName ?? "?"}${t.sdCheckpoint ? ` [${t.sdCheckpoint}]` : ""}`
        : undefined,
    ].filter(Boolean);
    lines.push(`                ${parts.join(", ")}`);
  }
  for (const issue of e.issues) lines.push(`    ! ${issue}`);
  return lines;
}

function histogramText(values: Record<string, number>, total: number): string {
  const entries = Object.entries(values).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return "unknown";
  if (entries.length === 1 && entries[0]![1] === total)
    return `${round(Number(entries[0]![0]))} (all modules)`;
  return entries.map(([value, count]) => `${round(Number(value))} ×${count}`).join(", ");
}

/** A float32 value as its shortest decimal (alphas are stored as float32). */
function round(value: number): string {
  for (let digits = 1; digits <= 9; digits++) {
    const text = Number(value.toPrecision(digits));
    if (Math.fround(text) === Math.fround(value)) return String(text);
  }
  return String(value);
}

function blockOrder(block: string): number {
  const match = /^(IN|M|OUT)(\d+)$/.exec(block);
  if (!match) return 1000;
  return { IN: 0, M: 100, OUT: 200 }[match[1] as "IN" | "M" | "OUT"] + Number(match[2]);
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

import type { Command } from "commander";
import { type InspectReport, inspectCheckpoint } from "../../arch/inspect-checkpoint.js";
import { openCheckpoint } from "../../io/open-checkpoint.js";
import { civitaiFacts, formatCivitaiFacts } from "../../lineage/index.js";
import { adapterLines } from "../inspect-adapters.js";
import { formatBytes, formatCount, printJson } from "../output.js";

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description(
      "tell exactly what a checkpoint is: format, architecture with evidence, components, metadata, warnings",
    )
    .argument("<file>", "a .safetensors, .ckpt, .pt, .pth or .bin file (pickles are parsed, never executed)")
    .option("--json", "print the gyoza.inspect/1 JSON report")
    .option("--keys", "list every tensor key with dtype and shape")
    .action(async (file: string, options: { json?: boolean; keys?: boolean }) => {
      const checkpoint = await openCheckpoint(file);
      try {
        const report = await inspectCheckpoint(checkpoint);
        if (options.json) printJson({ ...report, civitai: civitaiFacts(report) });
        else process.stdout.write(formatReport(report, options.keys ?? false));
      } finally {
        await checkpoint.close();
      }
    });
}

export function formatReport(report: InspectReport, withKeys: boolean): string {
  const lines: string[] = [];
  const arch = report.architecture;
  lines.push(`${report.file}`);
  lines.push(
    `  format        ${report.format}, ${formatBytes(report.size)}, ${Object.keys(report.tensors).length} tensors, ${formatCount(report.parameters)} parameters`,
  );
  lines.push(`  civitai       ${formatCivitaiFacts(civitaiFacts(report))}`);
  lines.push(
    `  architecture  ${arch.name} [${arch.id}]${arch.ambiguous ? " (ambiguous)" : ""}${arch.keyLayout ? `, ${arch.keyLayout} key names` : ""}, score ${arch.score}`,
  );
  for (const reason of arch.evidence) lines.push(`                · ${reason}`);
  if (arch.suggestion) lines.push(`                fix: ${arch.suggestion}`);
  lines.push("  components");
  for (const c of report.components) {
    const dtypes = Object.entries(c.dtypes)
      .map(([d, n]) => `${d}×${n}`)
      .join(" ");
    lines.push(
      `    ${c.name.padEnd(16)} ${formatCount(c.parameters).padStart(8)} params  ${String(c.tensors).padStart(5)} tensors  ${dtypes}`,
    );
  }
  lines.push(...adapterLines(report));
  const decoded = report.decodedMetadata;
  const metaKeys = Object.keys(report.metadata);
  if (metaKeys.length > 0) {
    lines.push(`  metadata      ${metaKeys.length} keys`);
    for (const [key, value] of Object.entries(decoded.modelspec))
      lines.push(`    modelspec.${key}: ${truncate(value)}`);
    if (decoded.mergeTool)
      lines.push(`    merge recipe written by ${decoded.mergeTool} (see --json for the decoded recipe)`);
    for (const [key, value] of Object.entries(decoded.other).slice(0, 12)) {
      lines.push(`    ${key}: ${truncate(typeof value === "string" ? value : JSON.stringify(value))}`);
    }
  }
  if (report.pickle) lines.push(`  pickle        globals: ${report.pickle.globals.join(", ") || "(none)"}`);
  if (report.warnings.length > 0) {
    lines.push("  warnings");
    for (const w of report.warnings) lines.push(`    ! ${w.message}`);
  }
  if (withKeys) {
    lines.push("  tensors");
    for (const [key, t] of Object.entries(report.tensors))
      lines.push(`    ${key}  ${t.dtype} [${t.shape.join(", ")}]`);
  }
  return `${lines.join("\n")}\n`;
}

function truncate(text: string, max = 100): string {
  const oneLine = text.replace(/\s+/g, " ");
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

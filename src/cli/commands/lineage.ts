import type { Command } from "commander";
import { describeAutomixOrigin } from "../../automix/automix-origin.js";
import { defaultHashCacheDir } from "../../hash/index.js";
import { type LineageNode, readLineage } from "../../lineage/index.js";
import { hashCacheOption, searchOption } from "../flags.js";
import { printJson } from "../output.js";
import { progressBar } from "../progress-bar.js";

interface LineageFlags {
  search?: string[];
  json?: boolean;
  hashCache: boolean;
}

export function registerLineage(program: Command): void {
  program
    .command("lineage")
    .description(
      "show a file's merge tree from its own metadata (gyoza, A1111, supermerger, sd-mecha) with each ancestor's name and hashes",
    )
    .argument("<file>", "a .safetensors checkpoint (pickles carry no metadata)")
    .addOption(searchOption("a folder whose model files are matched to ancestors by any hash"))
    .addOption(hashCacheOption())
    .option("--json", "print the tree as JSON")
    .action(async (file: string, flags: LineageFlags) => {
      const tree = await readLineage(file, {
        ...(flags.search ? { searchDirs: flags.search } : {}),
        hashCacheDir: flags.hashCache ? defaultHashCacheDir() : false,
        onProgress: progressBar({ quiet: flags.json ?? false }),
      });
      if (flags.json) printJson(tree);
      else process.stdout.write(formatLineage(tree));
    });
}

/** The tree drawn with box characters, one model per line, its merge and local matches under it. */
export function formatLineage(root: LineageNode): string {
  const lines: string[] = [];
  const draw = (node: LineageNode, lead: string, branch: string, below: string) => {
    lines.push(`${lead}${branch}${describeNode(node)}`);
    const inner = `${lead}${below}`;
    if (node.merge) lines.push(`${inner}${node.parents.length ? "│ " : "  "} ${node.merge.summary}`);
    if (node.automix)
      lines.push(`${inner}${node.parents.length ? "│ " : "  "} ${describeAutomixOrigin(node.automix)}`);
    for (const match of node.found ?? []) {
      lines.push(`${inner}${node.parents.length ? "│ " : "  "} found: ${match.path} (by ${match.matchedBy})`);
    }
    node.parents.forEach((parent, index) => {
      const last = index === node.parents.length - 1;
      draw(parent, inner, last ? "└─ " : "├─ ", last ? "   " : "│  ");
    });
  };
  draw(root, "", "", "");
  if (root.parents.length === 0) lines.push("  (no merge recorded in this file's metadata)");
  return `${lines.join("\n")}\n`;
}

function describeNode(node: LineageNode): string {
  const parts: string[] = [];
  if (node.role) parts.push(`${node.role}:`);
  parts.push(
    node.step !== undefined ? "(a step of this merge, not saved as a file)" : (node.name ?? "(unnamed)"),
  );
  const { sha256, autov3, legacyHash } = node.hashes;
  const hashes: string[] = [];
  if (sha256) hashes.push(`SHA256 ${sha256.slice(0, 10)}`);
  if (autov3) hashes.push(`AutoV3 ${autov3.slice(0, 12)}`);
  if (legacyHash) hashes.push(`legacy ${legacyHash}`);
  if (hashes.length) parts.push(`[${hashes.join(" · ")}]`);
  if (node.cut) parts.push(`(${node.cut === "cycle" ? "already above: cycle" : `cut: ${node.cut} limit`})`);
  return parts.join(" ");
}

import type { Command } from "commander";
import { unknownIdError } from "../../errors.js";
import { builtinPresets, FAMILIES, type Family, type Preset, unetSlotsOf } from "../../merge/index.js";
import { printJson } from "../output.js";

interface PresetsFlags {
  family: string;
  json?: boolean;
}

/** Table cells: enough digits to tell the curves apart, no trailing zeros. */
const TABLE_DECIMALS = 3;

export function registerPresets(program: Command): void {
  program
    .command("presets")
    .description("list the block-weight presets with their values (BASE first, then IN00..OUT)")
    .option("--family <family>", "sd1 (also SD 2.x) or sdxl", "sd1")
    .option("--json", "print an object: preset name → values, BASE first, full precision")
    .action((flags: PresetsFlags) => {
      const family = parseFamily(flags.family);
      const presets = [...builtinPresets.get(family)!.values()];
      if (flags.json) {
        printJson(Object.fromEntries(presets.map((preset) => [preset.name, [preset.base, ...preset.unet]])));
        return;
      }
      process.stdout.write(presetTable(family, presets));
    });
}

function parseFamily(text: string): Family {
  if ((FAMILIES as readonly string[]).includes(text)) return text as Family;
  throw unknownIdError("family", text, FAMILIES);
}

function presetTable(family: Family, presets: readonly Preset[]): string {
  const slots = unetSlotsOf(family);
  const width = Math.max(...presets.map((preset) => preset.name.length)) + 1;
  const cell = (value: number) => String(Number(value.toFixed(TABLE_DECIMALS)));
  const lines = [`${family} presets: BASE | ${slots[0]}..${slots.at(-1)} (${slots.length} values)`];
  for (const preset of presets) {
    const mark = preset.translated ? "*" : "";
    lines.push(
      `${(preset.name + mark).padEnd(width)} ${cell(preset.base)} | ${preset.unet.map(cell).join(" ")}`,
    );
  }
  if (presets.some((preset) => preset.translated)) {
    lines.push("* translated from the SD1 preset (IN00–IN08, M00, OUT00–OUT08)");
  }
  return `${lines.join("\n")}\n`;
}

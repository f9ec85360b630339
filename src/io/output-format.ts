import { GyozaError } from "../errors.js";

export type OutputFormat = "safetensors" | "ckpt";

/** The format an output path asks for, by its extension; anything else is refused before any work. */
export function outputFormatOf(path: string): OutputFormat {
  const lower = path.toLowerCase();
  if (lower.endsWith(".safetensors")) return "safetensors";
  if ([".ckpt", ".pt", ".pth", ".bin"].some((ext) => lower.endsWith(ext))) return "ckpt";
  throw new GyozaError("usage", "cannot tell the output format from the file name", {
    file: path,
    fix: "name the output *.safetensors (recommended) or *.ckpt",
  });
}

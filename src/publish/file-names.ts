import { extname } from "node:path";

/** A file-name-safe stem: letters, digits, dot, dash and underscore; the rest become dashes. */
export function fileStem(text: string): string {
  const stem = text
    .normalize("NFKC")
    .replace(/[^\p{L}\p{N}._-]+/gu, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "");
  return stem.slice(0, 120) || "model";
}

/** `name`, or `name` with -2, -3 … before the extension when taken. */
export function uniqueName(name: string, taken: readonly string[]): string {
  const lower = new Set(taken.map((other) => other.toLowerCase()));
  if (!lower.has(name.toLowerCase())) return name;
  const extension = extname(name);
  const stem = name.slice(0, name.length - extension.length);
  for (let n = 2; ; n++) {
    const candidate = `${stem}-${n}${extension}`;
    if (!lower.has(candidate.toLowerCase())) return candidate;
  }
}

/** "GyozaMix v3.0"; just the version's name when it already holds the model's ("GyozaMix v3", or a version named like its file). */
export function versionTitle(model: string, version: string): string {
  return version.toLowerCase().startsWith(model.toLowerCase()) ? version : `${model} ${version}`;
}

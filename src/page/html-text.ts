/**
 * Escaping for the model page. Every string that reaches the page (model names, prompts, file names,
 * hashes) comes from files or sidecars and is untrusted, so text and attribute values always go
 * through these; nothing is ever inserted raw.
 */
const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text content or a quoted attribute value. */
export function escapeHtml(text: string): string {
  // String(): values parsed from stored JSON may not be the strings their types promise
  return String(text).replace(/[&<>"']/g, (char) => ENTITIES[char]!);
}

/** Bytes as people read them (binary units, one decimal). */
export function formatSize(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A number with at most three decimals and no trailing zeros (0.5, 0.933, 1). */
export function formatWeight(value: number): string {
  return String(Number(value.toFixed(3)));
}

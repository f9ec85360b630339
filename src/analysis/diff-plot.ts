import type { DiffStats, ModelDiff } from "./diff-models.js";

/** Layout of the plot in SVG user units (pixels at 1×). */
const ROW_HEIGHT_PX = 18;
const LABEL_WIDTH_PX = 110;
const BAR_WIDTH_PX = 300;
const VALUES_WIDTH_PX = 260;
const HEADER_HEIGHT_PX = 46;

const escapeXml = (text: string): string =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/**
 * Heat colour of a cosine similarity: green when the block is the same, through yellow, to red
 * when it shares nothing. Cosines of fine-tunes sit near 1, so the scale is on −log10(1 − cos).
 */
export function similarityColor(cosine: number): string {
  const closeness = Math.min(1, Math.max(0, -Math.log10(Math.max(1e-6, 1 - cosine)) / 4)); // 1 − cos ≤ 1e-4: green
  const hue = Math.round(120 * closeness);
  return `hsl(${hue}, 70%, 50%)`;
}

function row(stats: DiffStats, y: number, maxL2: number): string {
  const width = maxL2 > 0 ? Math.max(1, (BAR_WIDTH_PX * stats.relativeL2) / maxL2) : 1;
  const values = `cos ${stats.cosine.toFixed(5)}  L2 ${stats.relativeL2.toFixed(4)}  same ${(100 * stats.identical).toFixed(0)}%`;
  return [
    `<text x="${LABEL_WIDTH_PX - 6}" y="${y + 13}" text-anchor="end">${escapeXml(stats.name)}</text>`,
    `<rect x="${LABEL_WIDTH_PX}" y="${y + 2}" width="${width.toFixed(1)}" height="${ROW_HEIGHT_PX - 4}" fill="${similarityColor(stats.cosine)}"/>`,
    `<text x="${LABEL_WIDTH_PX + BAR_WIDTH_PX + 8}" y="${y + 13}">${values}</text>`,
  ].join("");
}

/**
 * A plot a person can read at a glance: one bar per block and component, its length the relative
 * L2 distance (longer = more different), its colour the cosine similarity (green = same).
 */
export function diffPlotSvg(diff: ModelDiff, title: string): string {
  const rows = [...diff.blocks, ...diff.components, diff.total].filter((stats) => stats.keys > 0);
  const maxL2 = Math.max(0, ...rows.map((stats) => stats.relativeL2));
  const width = LABEL_WIDTH_PX + BAR_WIDTH_PX + VALUES_WIDTH_PX;
  const height = HEADER_HEIGHT_PX + rows.length * ROW_HEIGHT_PX + 10;
  const body = rows.map((stats, i) => row(stats, HEADER_HEIGHT_PX + i * ROW_HEIGHT_PX, maxL2));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="8" y="18" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="8" y="36" fill="#555">bar length: relative L2 distance (max ${maxL2.toFixed(4)}); colour: cosine similarity (green = same, red = unrelated)</text>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}

/** The plot as PNG, rendered by resvg (a prebuilt native renderer from npm, no download at run time). */
export async function diffPlotPng(svg: string): Promise<Uint8Array> {
  const { Resvg } = await import("@resvg/resvg-js");
  return new Resvg(svg, { background: "white", fitTo: { mode: "zoom", value: 2 } }).render().asPng();
}

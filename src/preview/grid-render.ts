import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { GyozaError } from "../errors.js";

/**
 * The labelled grid image of `gyoza grid`: the cells' images in a matrix (X across, Y down, one
 * section per Z value, stacked), column and row headers with each value's label, the axes named
 * above. Text is drawn by resvg from an SVG with the DejaVu Sans file shipped in `assets/fonts`
 * (machines without fonts draw the same image), the cells are composited by sharp. A failed cell
 * is a tile that says "failed: reason".
 */

const PACKAGE_ROOT = new URL("../../", import.meta.url);
/** The font the labels use: shipped with gyoza (assets/fonts, Bitstream Vera licence beside it). */
export const GRID_FONT_FILE = fileURLToPath(new URL("assets/fonts/DejaVuSans.ttf", PACKAGE_ROOT));
const FONT_FAMILY = "DejaVu Sans";

/** Cells larger than this (either side) are scaled down in grid.png; the cell files keep full size. */
export const MAX_CELL_SIDE_PX = 512;
/** Cells smaller than this (their longer side) are scaled up in grid.png. */
export const MIN_CELL_SIDE_PX = 192;
/** Largest grid image side: beyond it PNG viewers and browsers give up. */
export const MAX_GRID_SIDE_PX = 30_000;

const FONT_PX = 18;
const SMALL_FONT_PX = 15;
/** DejaVu Sans' average advance is about 0.55 em; used to wrap labels before drawing. */
const CHAR_WIDTH_EM = 0.58;
const LINE_PX = 22;
const PAD_PX = 10;
const TITLE_PX = 44;
const HEADER_LINES = 3;
const SECTION_PX = 40;
const BACKGROUND = "#ffffff";
const HEADER_FILL = "#f1f3f5";
const FAILED_FILL = "#fde8e8";

export interface GridRenderCell {
  x: number;
  y: number;
  z: number;
  /** The cell's image; absent when the cell failed or is not done. */
  png?: Uint8Array;
  /** Why the cell has no image ("failed: …" is drawn), or undefined while pending. */
  error?: string;
}

export interface GridRenderAxis {
  /** The parameter as the user named it (`OUT03`, `seed`). */
  name: string;
  /** One label per value (`OUT03 = 0.2`). */
  labels: readonly string[];
}

export interface GridRenderInput {
  x: GridRenderAxis;
  y?: GridRenderAxis;
  z?: GridRenderAxis;
  cells: readonly GridRenderCell[];
  /** A line above the grid (the recipe's name). */
  title?: string;
}

/** Renders the grid as one PNG. */
export async function renderGridPng(input: GridRenderInput): Promise<Buffer> {
  const sharp = (await import("sharp")).default;
  const xs = input.x.labels.length;
  const ys = input.y?.labels.length ?? 1;
  const zs = input.z?.labels.length ?? 1;
  const first = input.cells.find((cell) => cell.png);
  let cellWidth = 512;
  let cellHeight = 512;
  if (first?.png) {
    const meta = await sharp(first.png).metadata();
    cellWidth = meta.width ?? cellWidth;
    cellHeight = meta.height ?? cellHeight;
  }
  // Big images are scaled down, tiny ones (previews, stand-in images) up so the labels fit above them.
  const longest = Math.max(cellWidth, cellHeight);
  const scale =
    longest > MAX_CELL_SIDE_PX ? MAX_CELL_SIDE_PX / longest : Math.max(1, MIN_CELL_SIDE_PX / longest);
  cellWidth = Math.max(64, Math.round(cellWidth * scale));
  cellHeight = Math.max(64, Math.round(cellHeight * scale));

  const rowHeaderWidth = input.y ? Math.max(160, Math.min(320, cellWidth)) : 0;
  const columnHeaderHeight = PAD_PX * 2 + LINE_PX * HEADER_LINES;
  const sectionHeight = input.z ? SECTION_PX : 0;
  const sectionBody = columnHeaderHeight + ys * cellHeight;
  const width = rowHeaderWidth + xs * cellWidth;
  const height = TITLE_PX + zs * (sectionHeight + sectionBody);
  if (width > MAX_GRID_SIDE_PX || height > MAX_GRID_SIDE_PX) {
    throw new GyozaError(
      "limit",
      `the grid image would be ${width}×${height} px; at most ${MAX_GRID_SIDE_PX} a side`,
      {
        fix: "use fewer values per axis or smaller images (--size)",
      },
    );
  }

  const svg: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="${FONT_FAMILY}" font-size="${FONT_PX}">`,
    `<rect width="${width}" height="${height}" fill="${BACKGROUND}"/>`,
  ];
  const axesLine = [
    `X: ${input.x.name}`,
    ...(input.y ? [`Y: ${input.y.name}`] : []),
    ...(input.z ? [`Z: ${input.z.name}`] : []),
  ].join("   ·   ");
  const withTitle = input.title ? `${input.title}   —   ${axesLine}` : axesLine;
  // A narrow grid names its axes rather than its title.
  const title = fitLine(withTitle, width - 2 * PAD_PX, FONT_PX + 2) === withTitle ? withTitle : axesLine;
  svg.push(
    textLines([fitLine(title, width - 2 * PAD_PX, FONT_PX + 2)], PAD_PX, 30, {
      size: FONT_PX + 2,
      bold: true,
    }),
  );

  const composites: { input: Buffer; left: number; top: number }[] = [];
  const byPosition = new Map(input.cells.map((cell) => [`${cell.x}/${cell.y}/${cell.z}`, cell]));
  for (let z = 0; z < zs; z++) {
    const sectionTop = TITLE_PX + z * (sectionHeight + sectionBody);
    if (input.z) {
      svg.push(`<rect x="0" y="${sectionTop}" width="${width}" height="${SECTION_PX}" fill="#dde3ea"/>`);
      svg.push(
        textLines([fitLine(input.z.labels[z]!, width - 2 * PAD_PX, FONT_PX)], PAD_PX, sectionTop + 27, {
          bold: true,
        }),
      );
    }
    const headerTop = sectionTop + sectionHeight;
    svg.push(
      `<rect x="${rowHeaderWidth}" y="${headerTop}" width="${xs * cellWidth}" height="${columnHeaderHeight}" fill="${HEADER_FILL}"/>`,
    );
    for (let x = 0; x < xs; x++) {
      const lines = wrap(input.x.labels[x]!, cellWidth - 2 * PAD_PX, FONT_PX, HEADER_LINES);
      const left = rowHeaderWidth + x * cellWidth;
      svg.push(
        textLines(lines, left + cellWidth / 2, headerTop + PAD_PX + 16, { anchor: "middle" }),
        `<line x1="${left}" y1="${headerTop}" x2="${left}" y2="${headerTop + columnHeaderHeight}" stroke="#ccc"/>`,
      );
    }
    const bodyTop = headerTop + columnHeaderHeight;
    if (input.y) {
      svg.push(
        `<rect x="0" y="${bodyTop}" width="${rowHeaderWidth}" height="${ys * cellHeight}" fill="${HEADER_FILL}"/>`,
      );
      for (let y = 0; y < ys; y++) {
        const maxLines = Math.max(1, Math.floor((cellHeight - 2 * PAD_PX) / LINE_PX));
        const lines = wrap(input.y.labels[y]!, rowHeaderWidth - 2 * PAD_PX, FONT_PX, maxLines);
        const top = bodyTop + y * cellHeight;
        const textTop = top + cellHeight / 2 - ((lines.length - 1) * LINE_PX) / 2 + 6;
        svg.push(
          textLines(lines, PAD_PX, textTop),
          `<line x1="0" y1="${top}" x2="${rowHeaderWidth}" y2="${top}" stroke="#ccc"/>`,
        );
      }
    }
    for (let y = 0; y < ys; y++) {
      for (let x = 0; x < xs; x++) {
        const left = rowHeaderWidth + x * cellWidth;
        const top = bodyTop + y * cellHeight;
        const cell = byPosition.get(`${x}/${y}/${z}`);
        if (cell?.png) {
          try {
            const tile = await sharp(cell.png)
              .resize(cellWidth, cellHeight, { fit: "contain", background: BACKGROUND })
              .png()
              .toBuffer();
            composites.push({ input: tile, left, top });
            continue;
          } catch (cause) {
            svg.push(
              failedTile(
                `failed: the image is unreadable (${(cause as Error).message})`,
                left,
                top,
                cellWidth,
                cellHeight,
              ),
            );
            continue;
          }
        }
        if (cell?.error !== undefined)
          svg.push(failedTile(`failed: ${cell.error}`, left, top, cellWidth, cellHeight));
        else svg.push(pendingTile(left, top, cellWidth, cellHeight));
      }
    }
  }
  svg.push("</svg>");
  const { Resvg } = await import("@resvg/resvg-js");
  const base = new Resvg(svg.join("\n"), {
    font: { fontFiles: [GRID_FONT_FILE], loadSystemFonts: false, defaultFontFamily: FONT_FAMILY },
  })
    .render()
    .asPng();
  return sharp(base).composite(composites).png({ compressionLevel: 9 }).toBuffer();
}

function failedTile(message: string, left: number, top: number, width: number, height: number): string {
  const maxLines = Math.max(1, Math.floor((height - 2 * PAD_PX) / (LINE_PX - 3)));
  const lines = wrap(message, width - 2 * PAD_PX, SMALL_FONT_PX, maxLines);
  return [
    `<rect x="${left + 1}" y="${top + 1}" width="${width - 2}" height="${height - 2}" fill="${FAILED_FILL}" stroke="#c0392b" stroke-width="2"/>`,
    textLines(lines, left + PAD_PX, top + PAD_PX + 14, {
      size: SMALL_FONT_PX,
      fill: "#8e1b10",
      lineHeight: LINE_PX - 3,
    }),
  ].join("\n");
}

function pendingTile(left: number, top: number, width: number, height: number): string {
  return [
    `<rect x="${left + 1}" y="${top + 1}" width="${width - 2}" height="${height - 2}" fill="#f8f9fa" stroke="#ddd"/>`,
    textLines(["not generated yet"], left + width / 2, top + height / 2, { anchor: "middle", fill: "#888" }),
  ].join("\n");
}

function textLines(
  lines: readonly string[],
  x: number,
  y: number,
  options: {
    size?: number;
    bold?: boolean;
    anchor?: "start" | "middle";
    fill?: string;
    lineHeight?: number;
  } = {},
): string {
  const size = options.size ?? FONT_PX;
  const lineHeight = options.lineHeight ?? LINE_PX;
  const attributes = [
    `font-size="${size}"`,
    `fill="${options.fill ?? "#111"}"`,
    options.bold ? `font-weight="bold"` : "",
    options.anchor === "middle" ? `text-anchor="middle"` : "",
  ]
    .filter(Boolean)
    .join(" ");
  return lines
    .map((line, i) => `<text x="${x}" y="${y + i * lineHeight}" ${attributes}>${escapeXml(line)}</text>`)
    .join("\n");
}

/** Greedy word wrap to `maxLines`, the last line cut with "…" when the text does not fit. */
export function wrap(text: string, widthPx: number, fontPx: number, maxLines: number): string[] {
  const perLine = Math.max(4, Math.floor(widthPx / (fontPx * CHAR_WIDTH_EM)));
  const words = text.replace(/\s+/g, " ").trim().split(" ");
  const lines: string[] = [];
  let current = "";
  for (const word of words) {
    let rest = word;
    while (rest.length > perLine) {
      if (current) {
        lines.push(current);
        current = "";
      }
      lines.push(rest.slice(0, perLine));
      rest = rest.slice(perLine);
    }
    if (!current) current = rest;
    else if (current.length + 1 + rest.length <= perLine) current += ` ${rest}`;
    else {
      lines.push(current);
      current = rest;
    }
  }
  if (current) lines.push(current);
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, maxLines);
  kept[maxLines - 1] = fitLine(`${kept[maxLines - 1]} ${lines[maxLines]}`, widthPx, fontPx, true);
  return kept;
}

function fitLine(text: string, widthPx: number, fontPx: number, forceEllipsis = false): string {
  const perLine = Math.max(4, Math.floor(widthPx / (fontPx * CHAR_WIDTH_EM)));
  if (text.length <= perLine && !forceEllipsis) return text;
  return `${text.slice(0, perLine - 1).trimEnd()}…`;
}

function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Reads the font once to fail early (and clearly) when an install lost it. */
export function checkGridFont(): void {
  try {
    readFileSync(GRID_FONT_FILE).subarray(0, 4);
  } catch (cause) {
    throw new GyozaError("io", "the grid label font is missing from this gyoza install", {
      file: GRID_FONT_FILE,
      fix: "reinstall gyoza (the package ships assets/fonts/DejaVuSans.ttf)",
      cause,
    });
  }
}

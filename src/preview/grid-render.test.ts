import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { GRID_FONT_FILE, renderGridPng, wrap } from "./grid-render.js";

/** A generated tile: a flat colour per cell, so the test can find each cell in the grid. */
async function tile(red: number, green: number, blue: number): Promise<Buffer> {
  return sharp({
    create: { width: 192, height: 256, channels: 3, background: { r: red, g: green, b: blue } },
  })
    .png()
    .toBuffer();
}

/** Share of pixels in a region that are not (nearly) the region's most common value. */
async function inkShare(
  png: Buffer,
  left: number,
  top: number,
  width: number,
  height: number,
): Promise<number> {
  const { data, info } = await sharp(png)
    .extract({ left, top, width, height })
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const counts = new Map<number, number>();
  for (const value of data) counts.set(value, (counts.get(value) ?? 0) + 1);
  const background = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  let ink = 0;
  for (const value of data) if (Math.abs(value - background) > 60) ink++;
  return ink / (info.width * info.height);
}

describe("grid image", () => {
  it("lays out a 3×2 grid with headers that carry text, cells in place and a failed tile", async () => {
    const cells = [];
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 3; x++) {
        if (x === 2 && y === 1) cells.push({ x, y, z: 0, error: "backend said: out of memory" });
        else cells.push({ x, y, z: 0, png: await tile(40 + x * 80, 200 - y * 120, 90) });
      }
    }
    const png = await renderGridPng({
      x: { name: "OUT03", labels: ["OUT03 = 0", "OUT03 = 0.2", "OUT03 = 0.4"] },
      y: { name: "seed", labels: ["seed = 1", "seed = 2"] },
      cells,
      title: "GyozaMix",
    });
    const meta = await sharp(png).metadata();
    const rowHeader = 192;
    const columnHeader = 10 * 2 + 22 * 3;
    const title = 44;
    expect(meta.width).toBe(rowHeader + 3 * 192);
    expect(meta.height).toBe(title + columnHeader + 2 * 256);
    // Headers carry text (not blank), the cells their own colour, the failed cell its text.
    expect(await inkShare(png, rowHeader, title, 192, columnHeader)).toBeGreaterThan(0.01);
    expect(await inkShare(png, 0, title + columnHeader, rowHeader, 256)).toBeGreaterThan(0.005);
    expect(await inkShare(png, 0, 0, meta.width!, title)).toBeGreaterThan(0.005);
    const { data } = await sharp(png)
      .extract({ left: rowHeader + 192 + 96, top: title + columnHeader + 128, width: 1, height: 1 })
      .raw()
      .toBuffer({ resolveWithObject: true });
    expect([...data.subarray(0, 3)]).toEqual([120, 200, 90]);
    expect(await inkShare(png, rowHeader + 2 * 192, title + columnHeader + 256, 192, 256)).toBeGreaterThan(
      0.01,
    );
    if (process.env.GYOZA_KEEP_GRID) {
      mkdirSync(process.env.GYOZA_KEEP_GRID, { recursive: true });
      writeFileSync(join(process.env.GYOZA_KEEP_GRID, "grid-3x2.png"), png);
    }
  });

  it("stacks one section per Z value", async () => {
    const cells = [0, 1].map((z) => ({ x: 0, y: 0, z, error: "x" }));
    const png = await renderGridPng({
      x: { name: "alpha", labels: ["alpha = 0.5"] },
      z: { name: "clip_skip", labels: ["clip_skip = 1", "clip_skip = 2"] },
      cells,
    });
    const meta = await sharp(png).metadata();
    expect(meta.height).toBe(44 + 2 * (40 + 86 + 512));
  });

  it("wraps a long label and cuts what does not fit with an ellipsis", () => {
    const lines = wrap(
      "prompt = masterpiece, best quality, 1girl, smile, outdoors, cherry blossoms",
      120,
      18,
      2,
    );
    expect(lines).toHaveLength(2);
    expect(lines[1]!.endsWith("…")).toBe(true);
    expect(wrap("seed = 1", 200, 18, 3)).toEqual(["seed = 1"]);
  });

  it("ships its font inside the package", async () => {
    const { statSync } = await import("node:fs");
    expect(statSync(GRID_FONT_FILE).size).toBeGreaterThan(100_000);
  });
});

import { describe, expect, it } from "vitest";
import { loadRecipe } from "../recipe/index.js";
import { formatSize } from "./html-text.js";
import { type PageImageFiles, renderModelPage } from "./render-model-page.js";
import { GYOZAMIX_YAML, SAMPLE_INFOTEXT, samplePageData } from "./test-support/sample-page-data.js";

const IMAGES = new Map<string, PageImageFiles>([
  ["/src/v2.png", { original: "images/002-v2.png", thumbnail: "thumbnails/002-v2.webp", problem: null }],
  [
    "/src/v1.png",
    { original: "images/001-v1.png", thumbnail: null, problem: "not an image libvips can read" },
  ],
]);

function page(data = samplePageData({ v1: "/src/v1.png", v2: "/src/v2.png" })): string {
  return renderModelPage(data, IMAGES);
}

/** Text content of the page with tags removed and the five entities decoded. */
function textOf(html: string): string {
  return html
    .replace(/<style>[\s\S]*?<\/style>|<script>[\s\S]*?<\/script>/g, "")
    .replace(/<[^>]*>/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, "&");
}

describe("renderModelPage", () => {
  it("lists the versions in the order given (newest first) with their files, types and formats", () => {
    const html = page();
    expect(
      [...html.matchAll(/<section class="version"[^>]*data-version="([^"]*)"/g)].map((m) => m[1]),
    ).toEqual(["v2", "v1"]);
    const text = textOf(html).replace(/\s+/g, " ");
    expect(text).toContain("gyozamix-v2-fp16.safetensors");
    expect(text).toContain("fp32 · full · PickleTensor");
    expect(text).toMatch(/2\s+versions/);
    expect(text).toMatch(/3\s+files/);
    expect(text).toMatch(/2\s+images/);
    expect(text).toContain(`${formatSize(3 * 2_132_000_000)} in total`);
  });

  it("shows every hash of a file with a copy button holding its value", () => {
    const html = page();
    for (const name of ["SHA256", "AutoV1", "AutoV2", "AutoV3", "BLAKE3", "CRC32"]) {
      expect(html).toContain(`<dt>${name}</dt>`);
    }
    expect(html).toContain(
      `<code>${"3".repeat(64)}</code><button type="button" data-copy="${"3".repeat(64)}"`,
    );
  });

  it("puts an image's own A1111 infotext in its dialog and its copy-generation-data button", () => {
    const html = page();
    const escaped = SAMPLE_INFOTEXT.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    expect(html).toContain(`<pre class="infotext">${escaped}</pre>`);
    expect(html).toContain(`class="copy-generation" data-copy="${escaped.replace(/"/g, "&quot;")}"`);
    expect(html).toMatch(
      /<button type="button" class="thumb" data-dialog="image-1"[^>]*><img src="thumbnails\/002-v2.webp"/,
    );
    expect(textOf(html)).toContain("DPM++ 2M Karras");
  });

  it("says why an image has no preview and that it carries no generation data", () => {
    const text = textOf(page());
    expect(text).toContain("no preview: not an image libvips can read");
    expect(text).toContain("this image carries no generation data");
  });

  it("draws the recipe as a tree from the output: final step, its composition step, then the VAE", () => {
    const text = textOf(page()).replace(/\s+/g, " ");
    const final = text.indexOf("step final");
    const composition = text.indexOf("step composition");
    const vae = text.indexOf("VAE bake vae/kl-f8-anime2.ckpt");
    expect(final).toBeGreaterThan(0);
    expect(composition).toBeGreaterThan(final);
    expect(vae).toBeGreaterThan(composition);
    expect(text).toContain("a: model texture models/texture-tuned.safetensors");
  });

  it("draws one block-weight chart per MBW step with the 26 SD 1.x slot names on the x axis", () => {
    const html = page();
    const charts = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    expect(charts).toHaveLength(2);
    for (const chart of charts) {
      const slots = [...chart.matchAll(/class="slot">([^<]*)</g)].map((m) => m[1]);
      expect(slots).toHaveLength(26);
      expect(slots.slice(0, 3)).toEqual(["BASE", "IN00", "IN01"]);
      expect(slots.at(-1)).toBe("OUT11");
    }
    expect(charts[0]).toContain("composition: weighted_sum block weights");
    // REVERSE_COSINE starts at 0 (pure A) and ends at 1 (pure B)
    expect(charts[0]).toContain("alpha IN00: 0<");
    expect(charts[0]).toContain("alpha OUT11: 1<");
  });

  it("draws SDXL block weights over its 20 slots", () => {
    const data = samplePageData({ v1: "/src/v1.png", v2: "/src/v2.png" });
    data.versions[0]!.recipe = { recipe: loadRecipe(GYOZAMIX_YAML), summary: null, family: "sdxl" };
    const chart = page(data).match(/<svg[\s\S]*?<\/svg>/)![0];
    const slots = [...chart.matchAll(/class="slot">([^<]*)</g)].map((m) => m[1]);
    expect(slots).toHaveLength(20);
    expect(slots.at(-1)).toBe("OUT08");
  });

  it("shows another tool's recipe record as its one-line summary", () => {
    const data = samplePageData({ v1: "/src/v1.png", v2: "/src/v2.png" });
    data.versions[0]!.recipe = { recipe: null, summary: "supermerger: Weight sum, alpha 0.5", family: "sd1" };
    const html = page(data);
    expect(html).toContain('<p class="recipe-summary">supermerger: Weight sum, alpha 0.5</p>');
    expect(html).not.toContain("<svg");
  });

  it("shows the usage notes: clip skip, VAE, negative embeddings", () => {
    const text = textOf(page()).replace(/\s+/g, " ");
    expect(text).toContain("Clip skip 2");
    expect(text).toContain("VAE kl-f8-anime2.ckpt");
    expect(text).toContain("Negative embeddings AuroraNegative");
    expect(text).toContain("keep it when you share them");
  });

  it("loads nothing from elsewhere: every src and href is a relative path inside the page folder", () => {
    const html = page();
    const urls = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) expect(url).toMatch(/^(images|thumbnails)\/[A-Za-z0-9._%-]+$/);
    expect(html).not.toMatch(/<link\b|@import|url\(\s*["']?(?:https?:)?\/\//i);
  });

  it("shows a model named <script>, with hostile tags, file names, prompts and hashes, as text and never as markup", () => {
    const hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>"'&`;
    const data = samplePageData({ v1: "/src/v1.png", v2: "/src/v2.png" });
    data.model.name = hostile;
    data.model.tags = [hostile];
    data.model.description = hostile;
    const version = data.versions[0]!;
    version.name = hostile;
    version.files[0]!.name = hostile;
    version.files[0]!.hashes.SHA256 = hostile;
    version.usage.notes = hostile;
    version.usage.negativeEmbeddings = [hostile];
    version.parents = [{ name: hostile, hash: hostile }];
    const generation = version.images[0]!.generation!;
    generation.prompt = hostile;
    generation.raw = { parameters: hostile };
    generation.model = { name: hostile, hash: hostile };
    const html = page(data);
    // the only script element is the page's own; no attribute or element came from the data
    expect(html.match(/<script\b/g)).toHaveLength(1);
    expect(html).not.toContain("<img src=x");
    // with every quoted attribute value emptied, no tag has an event handler
    expect(html.replace(/"[^"]*"/g, '""')).not.toMatch(/<[^>]*\sonerror=/);
    expect(html).not.toMatch(/data-copy="[^"]*<script/);
    expect(textOf(html)).toContain(hostile);
    expect(html).toContain("<title>&lt;script&gt;alert(1)&lt;/script&gt;");
  });
});

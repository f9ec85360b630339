import { generationFields, infotextOf } from "./generation-text.js";
import { escapeHtml, formatSize } from "./html-text.js";
import type { ModelPageData, PageFile, PageImage, PageUsage, PageVersion } from "./model-page-data.js";
import { PAGE_SCRIPT, PAGE_STYLE } from "./page-assets.js";
import { renderRecipe } from "./recipe-tree.js";

/** Where an image's files sit in the page folder (relative paths), or why it has no preview. */
export interface PageImageFiles {
  /** The original, byte for byte, metadata included; null when its file is gone. */
  original: string | null;
  thumbnail: string | null;
  /** Why no thumbnail could be made (not an image, too many pixels, damaged). */
  problem: string | null;
}

/** The order and names of the hashes in a file's list (Civitai's, then the usual CRC32 byte order). */
const HASH_ORDER = ["SHA256", "AutoV1", "AutoV2", "AutoV3", "BLAKE3", "CRC32"];

/**
 * The model page as one self-contained HTML document (inline style and script, images by relative
 * path, no external URL): header with tags and stats, then one section per version in the order
 * given (newest first) with its files and hashes, sample images, recipe and usage notes. Pure:
 * the same data gives the same bytes. Every string from the data is escaped.
 */
export function renderModelPage(data: ModelPageData, images: ReadonlyMap<string, PageImageFiles>): string {
  const files = data.versions.flatMap((version) => version.files);
  const imageCount = data.versions.reduce((sum, version) => sum + version.images.length, 0);
  const totalBytes = files.reduce((sum, file) => sum + file.sizeBytes, 0);
  const counter = { image: 0 };
  const body = [
    "<header>",
    `<h1>${escapeHtml(data.model.name)}</h1>`,
    data.model.type ? `<div class="muted">${escapeHtml(data.model.type)}</div>` : "",
    data.model.tags.length > 0
      ? `<ul class="tags">${data.model.tags.map((tag) => `<li>${escapeHtml(tag)}</li>`).join("")}</ul>`
      : "",
    `<ul class="stats">${stat(data.versions.length, "versions")}${stat(files.length, "files")}${stat(imageCount, "images")}<li><b>${escapeHtml(formatSize(totalBytes))}</b> in total</li></ul>`,
    data.model.description ? `<p class="description">${escapeHtml(data.model.description)}</p>` : "",
    "</header><main>",
    ...data.versions.map((version, index) => renderVersion(version, index, images, counter)),
    `<p class="note">Sample images are copied into this page's folder byte for byte: their generation data stays inside them. Please keep it when you share them (don't re-save or strip the metadata).</p>`,
    "</main>",
  ];
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    // Nothing may load from elsewhere: the page is self-contained and may show hostile text.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">`,
    `<title>${escapeHtml(data.model.name)}</title>`,
    `<style>${PAGE_STYLE}</style></head><body>`,
    ...body,
    `<script>${PAGE_SCRIPT}</script>`,
    "</body></html>",
    "",
  ].join("\n");
}

function stat(count: number, label: string): string {
  return `<li><b>${count}</b> ${label}</li>`;
}

function renderVersion(
  version: PageVersion,
  index: number,
  images: ReadonlyMap<string, PageImageFiles>,
  counter: { image: number },
): string {
  const subtitle = [version.baseModel, version.createdAt?.slice(0, 10)].filter(Boolean).join(" · ");
  const parts = [
    `<section class="version" id="version-${index + 1}" data-version="${escapeHtml(version.name)}">`,
    `<h2>${escapeHtml(version.name)}</h2>`,
    subtitle ? `<div class="muted">${escapeHtml(subtitle)}</div>` : "",
    "<h3>Files</h3>",
    version.files.length > 0
      ? `<table class="files"><thead><tr><th>File</th><th>Type</th><th>Size</th><th>Format</th><th>Hashes</th></tr></thead><tbody>${version.files.map(renderFile).join("")}</tbody></table>`
      : '<p class="muted">no files</p>',
    "<h3>Sample images</h3>",
    version.images.length > 0
      ? `<div class="gallery">${version.images.map((image) => renderImage(image, images, counter)).join("")}</div>`
      : '<p class="muted">no sample images</p>',
  ];
  if (version.recipe) parts.push("<h3>Recipe</h3>", renderRecipe(version.recipe));
  if (version.parents.length > 0) {
    const parents = version.parents.map(
      (parent) =>
        `<li>${escapeHtml(parent.name)}${parent.hash ? ` <code>${escapeHtml(parent.hash)}</code>` : ""}</li>`,
    );
    parts.push("<h3>Merged from</h3>", `<ul class="parents">${parents.join("")}</ul>`);
  }
  parts.push("<h3>Usage</h3>", renderUsage(version.usage), "</section>");
  return parts.join("\n");
}

function renderFile(file: PageFile): string {
  const details = [file.fp, file.size, file.format].filter(Boolean).join(" · ");
  const names = [
    ...HASH_ORDER.filter((name) => name in file.hashes),
    ...Object.keys(file.hashes).filter((name) => !HASH_ORDER.includes(name)),
  ];
  const hashes = names
    .map((name) => {
      const value = file.hashes[name];
      if (value === null || value === undefined)
        return `<dt>${escapeHtml(name)}</dt><dd class="muted">—</dd>`;
      return `<dt>${escapeHtml(name)}</dt><dd><code>${escapeHtml(value)}</code>${copyButton(value, `copy ${name}`)}</dd>`;
    })
    .join("");
  return (
    `<tr class="file"><td><b>${escapeHtml(file.name)}</b>${file.missing ? ' <span class="muted">(missing)</span>' : ""}</td>` +
    `<td>${escapeHtml(file.type ?? "—")}</td><td>${escapeHtml(formatSize(file.sizeBytes))}</td>` +
    `<td>${escapeHtml(details || "—")}</td><td><dl class="hashes">${hashes}</dl></td></tr>`
  );
}

function copyButton(text: string, label: string): string {
  return `<button type="button" data-copy="${escapeHtml(text)}" aria-label="${escapeHtml(label)}">copy</button>`;
}

function renderImage(
  image: PageImage,
  images: ReadonlyMap<string, PageImageFiles>,
  counter: { image: number },
): string {
  const files = images.get(image.path);
  if (!files) return "";
  const id = `image-${++counter.image}`;
  const original = files.original === null ? null : hrefOf(files.original);
  const preview = files.thumbnail
    ? `<img src="${hrefOf(files.thumbnail)}" alt="sample image ${counter.image}">`
    : `<span class="no-preview">no preview: ${escapeHtml(files.problem ?? "unknown reason")}</span>`;
  const info = image.generation;
  const generation = info
    ? `<dl class="generation">${generationFields(info)
        .map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(value)}</dd>`)
        .join("")}</dl>` +
      (info.prompt !== undefined
        ? `<h4>Prompt</h4><pre class="prompt">${escapeHtml(info.prompt)}</pre>`
        : "") +
      (info.negativePrompt !== undefined
        ? `<h4>Negative prompt</h4><pre class="negative">${escapeHtml(info.negativePrompt)}</pre>`
        : "") +
      `<h4>Generation data</h4><pre class="infotext">${escapeHtml(infotextOf(info))}</pre>` +
      `<button type="button" class="copy-generation" data-copy="${escapeHtml(infotextOf(info))}">copy generation data</button>`
    : '<p class="muted">this image carries no generation data</p>';
  return (
    `<button type="button" class="thumb" data-dialog="${id}" aria-label="show generation data of sample image ${counter.image}">${preview}</button>` +
    `<dialog id="${id}" class="image-dialog"><div class="dialog-bar"><button type="button" data-close>close</button></div><div class="full">` +
    (files.thumbnail && original
      ? `<a href="${original}"><img src="${original}" alt="sample image ${counter.image}, full size" loading="lazy"></a>`
      : "") +
    `<div class="details">${
      original && files.original
        ? `<p><a href="${original}">${escapeHtml(files.original.split("/").at(-1) ?? "")}</a> (original, metadata kept)</p>`
        : `<p class="muted">${escapeHtml(files.problem ?? "original not copied")}</p>`
    }${generation}</div></div></dialog>`
  );
}

/** A relative path inside the page folder as an href: each segment URL-encoded, then escaped. */
function hrefOf(path: string): string {
  return escapeHtml(path.split("/").map(encodeURIComponent).join("/"));
}

function renderUsage(usage: PageUsage): string {
  const rows: [string, string][] = [];
  if (usage.clipSkip !== null) rows.push(["Clip skip", String(usage.clipSkip)]);
  if (usage.vae) rows.push(["VAE", usage.vae]);
  if (usage.negativeEmbeddings.length > 0)
    rows.push(["Negative embeddings", usage.negativeEmbeddings.join(", ")]);
  if (usage.trainedWords.length > 0) rows.push(["Trigger words", usage.trainedWords.join(", ")]);
  const list =
    rows.length > 0
      ? `<dl class="generation usage">${rows.map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(value)}</dd>`).join("")}</dl>`
      : '<p class="muted">no recommended settings recorded</p>';
  return usage.notes ? `${list}<p class="usage-notes">${escapeHtml(usage.notes)}</p>` : list;
}

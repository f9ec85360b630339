import type { GeneratedImage, GenerationParams } from "../backends/types.js";
import { formatInfotext, type InfotextParameter, parseInfotext } from "../image/infotext.js";
import { textsByKey } from "../image/metadata-types.js";
import { PNG_SIGNATURE } from "../image/png-reader.js";
import { makePngTextChunk, PNG_METADATA_CHUNKS, splitPng } from "../image/png-writer.js";
import { readImageMetadata } from "../image/read-image-metadata.js";
import { writeFileAtomically } from "../io/atomic-file.js";
import { BufferByteSource } from "../io/byte-source.js";

/** The model an image was made with, as the infotext names it. */
export interface SampleModel {
  /** The merge's (or model's) name: `Model:`. */
  name: string;
  /** AutoV2 (first 10 hex of the file's sha256): `Model hash:`. */
  autov2: string;
}

export interface SampleImageInput {
  image: GeneratedImage;
  params: GenerationParams;
  model: SampleModel;
  /** The gyoza recipe key (`gyoza recipe:`), when the model is a recipe's merge. */
  recipeKey?: string;
  /** AutoV2 of the VAE file, when known (`VAE hash:`). */
  vaeHash?: string;
}

/** The infotext key gyoza adds for the recipe key. */
export const RECIPE_KEY_FIELD = "gyoza recipe";

/**
 * The A1111 infotext of a sample: prompt, negative prompt, then Steps, Sampler, Schedule type, CFG
 * scale, Seed, Size, Model hash, Model, VAE hash, VAE, Clip skip, gyoza recipe — in A1111's order,
 * after any other fields the backend's own infotext held (kept, never dropped).
 */
export function sampleInfotext(input: SampleImageInput, backendInfotext?: string): string {
  const { params, model } = input;
  const ours: [string, string | undefined][] = [
    ["Steps", String(params.steps)],
    ["Sampler", params.sampler],
    ["Schedule type", params.scheduler],
    ["CFG scale", String(params.cfg)],
    ["Seed", String(params.seed)],
    ["Size", `${params.width}x${params.height}`],
    ["Model hash", model.autov2],
    ["Model", model.name],
    ["VAE hash", params.vae ? input.vaeHash : undefined],
    ["VAE", params.vae],
    ["Clip skip", params.clipSkip > 1 ? String(params.clipSkip) : undefined],
    [RECIPE_KEY_FIELD, input.recipeKey],
  ];
  const parameters: InfotextParameter[] = [];
  for (const [key, value] of ours) if (value !== undefined && value !== "") parameters.push({ key, value });
  if (backendInfotext) {
    // fields the backend wrote that gyoza does not set (Version, Denoising strength, Lora hashes …)
    const known = new Set(ours.map(([key]) => key));
    for (const parameter of parseInfotext(backendInfotext).parameters) {
      if (!known.has(parameter.key)) parameters.push(parameter);
    }
  }
  return formatInfotext({
    prompt: params.prompt,
    negativePrompt: params.negativePrompt || undefined,
    parameters,
  });
}

/**
 * The PNG with gyoza's `parameters` infotext: every other metadata chunk the backend wrote
 * (ComfyUI's `prompt` and `workflow`) stays byte for byte; a `prompt` graph the client returned but
 * the PNG lacks is added.
 */
export async function sampleImageBytes(
  input: SampleImageInput,
): Promise<{ bytes: Buffer; infotext: string }> {
  const png = input.image.png;
  const chunks = splitPng(png, "<backend image>");
  const texts = textsByKey((await readImageMetadata(new BufferByteSource(png, "<backend image>"))).texts);
  const backendInfotext = input.image.infotext ?? texts.parameters;
  const infotext = sampleInfotext(input, backendInfotext);
  const kept = chunks.filter(
    (chunk) => !(PNG_METADATA_CHUNKS.has(chunk.type) && keywordOf(chunk.bytes) === "parameters"),
  );
  const added = [makePngTextChunk("parameters", infotext)];
  if (input.image.comfyPrompt && texts.prompt === undefined) {
    added.push(makePngTextChunk("prompt", JSON.stringify(input.image.comfyPrompt)));
  }
  const [ihdr, ...rest] = kept;
  const bytes = Buffer.concat([PNG_SIGNATURE, ihdr!.bytes, ...added, ...rest.map((chunk) => chunk.bytes)]);
  return { bytes, infotext };
}

/** Writes the sample (temp file, fsync, rename: a half-written image never appears). */
export async function writeSampleImage(
  path: string,
  input: SampleImageInput,
): Promise<{ path: string; bytes: number; infotext: string }> {
  const { bytes, infotext } = await sampleImageBytes(input);
  await writeFileAtomically(path, bytes);
  return { path, bytes: bytes.byteLength, infotext };
}

/** A text chunk's keyword (the bytes before its first NUL); eXIf has none. */
function keywordOf(chunk: Uint8Array): string | undefined {
  const type = String.fromCharCode(...chunk.subarray(4, 8));
  if (type === "eXIf") return undefined;
  const data = chunk.subarray(8, chunk.byteLength - 4);
  const end = data.indexOf(0);
  return end < 0 ? undefined : Buffer.from(data.subarray(0, end)).toString("latin1");
}

import { isDeepStrictEqual } from "node:util";
import { GyozaError } from "../errors.js";
import { BufferByteSource } from "../io/byte-source.js";
import { checkNameFitsContainer } from "./container-extensions.js";
import { detectGeneration } from "./detect-generation.js";
import { buildExif, type ExifTextFields } from "./exif-writer.js";
import type { GenerationInfo } from "./generators/generation-info.js";
import { XMP_APP1_HEADER } from "./jpeg-reader.js";
import {
  jpegMetadataSegments,
  makeExifSegment,
  makeJpegSegment,
  replaceJpegMetadata,
} from "./jpeg-writer.js";
import { type ImageContainer, type ImageMetadata, textsByKey } from "./metadata-types.js";
import { makePngTextChunk, pngMetadataChunks, replacePngMetadata } from "./png-writer.js";
import { readImageMetadata, sniffContainer } from "./read-image-metadata.js";
import { toLogicalTexts } from "./text-bundle.js";
import { encodeUtf8 } from "./text-codec.js";
import { replaceWebpMetadata, webpMetadataPayloads } from "./webp-writer.js";

export interface ImageBytes {
  bytes: Uint8Array;
  /** For error messages (usually the path). */
  name: string;
}

export interface MetadataWriteResult {
  bytes: Uint8Array;
  /** Metadata keys now in the output. */
  carried: string[];
  /** Source keys the output cannot hold (only with `allowLoss`). */
  dropped: string[];
  /** Keys the target had before and that were replaced or removed. */
  replaced: string[];
}

/**
 * Every text an image in memory carries (PNG, JPEG, WebP, AVIF), without decoding pixels; damage
 * becomes `warnings`. Pass `textsByKey(metadata.texts)` to `detectGeneration` for the prompt and settings.
 */
export async function readMetadataOf(image: ImageBytes): Promise<ImageMetadata> {
  return readImageMetadata(new BufferByteSource(image.bytes, image.name));
}

function containerOf(image: ImageBytes, writing: boolean): ImageContainer {
  const container = sniffContainer(image.bytes.subarray(0, 12));
  if (!container) throw new GyozaError("format", "not a PNG, JPEG, WebP or AVIF image", { file: image.name });
  if (writing && container === "avif") {
    throw new GyozaError("usage", "writing metadata into AVIF is not supported (AVIF is read only)", {
      file: image.name,
      fix: "write the metadata into a PNG, JPEG or WebP copy",
    });
  }
  return container;
}

/** Writes `logical` (PNG keywords) into a container that is not the source's. */
function writeLogical(
  target: ImageBytes,
  container: ImageContainer,
  logical: Record<string, string>,
): Uint8Array {
  if (container === "png") {
    return replacePngMetadata(
      target.bytes,
      Object.entries(logical).map(([key, text]) => makePngTextChunk(key, text)),
      target.name,
    );
  }
  const { prompt, workflow, "XML:com.adobe.xmp": xmp, parameters, ...rest } = logical;
  // ComfyUI's own EXIF convention (SaveAnimatedWEBP): Model = "prompt:{...}", Make = "workflow:{...}".
  const fields: ExifTextFields = {};
  if (prompt !== undefined) fields.model = `prompt:${prompt}`;
  if (workflow !== undefined) fields.make = `workflow:${workflow}`;
  // A lone infotext goes into UserComment as A1111 writes it; anything more travels as a JSON bundle (as NovelAI's WebP does).
  if (Object.keys(rest).length > 0)
    fields.userComment = JSON.stringify(parameters === undefined ? rest : { parameters, ...rest });
  else if (parameters !== undefined) fields.userComment = parameters;
  const exif = Object.keys(fields).length > 0 ? buildExif(fields) : null;
  const xmpBytes = xmp === undefined ? null : encodeUtf8(xmp);
  if (container === "webp") return replaceWebpMetadata(target.bytes, { exif, xmp: xmpBytes }, target.name);
  const segments: Uint8Array[] = [];
  if (exif) segments.push(makeExifSegment(exif));
  if (xmpBytes)
    segments.push(
      makeJpegSegment(0xe1, Buffer.concat([encodeUtf8(XMP_APP1_HEADER), xmpBytes]), "XMP packet"),
    );
  return replaceJpegMetadata(target.bytes, segments, target.name);
}

/** Same container: the metadata chunks/segments travel byte for byte. */
function writeRaw(source: ImageBytes, target: ImageBytes, container: ImageContainer): Uint8Array {
  if (container === "png")
    return replacePngMetadata(target.bytes, pngMetadataChunks(source.bytes, source.name), target.name);
  if (container === "jpeg")
    return replaceJpegMetadata(target.bytes, jpegMetadataSegments(source.bytes, source.name), target.name);
  return replaceWebpMetadata(target.bytes, webpMetadataPayloads(source.bytes, source.name), target.name);
}

function comparable(info: GenerationInfo | undefined): Omit<GenerationInfo, "raw"> | undefined {
  if (!info) return undefined;
  const { raw: _raw, ...rest } = info;
  return rest;
}

/**
 * Carries `source`'s metadata onto `target` (a re-encoded or resized copy), leaving the target's
 * pixel data byte-identical. Same container: chunks/segments are copied as they are. Across
 * containers, the conventions of each front end are used (infotext → UserComment, ComfyUI →
 * Make/Model). Refuses, rather than silently dropping anything: metadata the target container cannot
 * hold is an error unless `allowLoss`, and the written result is read back and must parse the same.
 * The result keeps the target's container (pixels are never re-encoded): `outputName`, where the
 * result will be written under another name than the target's, must have that container's extension.
 */
export async function copyMetadata(
  source: ImageBytes,
  target: ImageBytes,
  options: { allowLoss?: boolean; outputName?: string } = {},
): Promise<MetadataWriteResult> {
  const sourceContainer = containerOf(source, false);
  const targetContainer = containerOf(target, true);
  if (options.outputName !== undefined)
    checkNameFitsContainer(options.outputName, targetContainer, `the target ${target.name}`);
  const sourceMeta = await readMetadataOf(source);
  const sourceTexts = textsByKey(sourceMeta.texts);
  if (Object.keys(sourceTexts).length === 0) {
    throw new GyozaError("usage", "has no metadata to copy", { file: source.name });
  }
  const replaced = Object.keys(textsByKey((await readMetadataOf(target)).texts));
  let bytes: Uint8Array;
  let dropped: string[] = [];
  if (sourceContainer === targetContainer) bytes = writeRaw(source, target, targetContainer);
  else {
    const { logical, unmapped } = toLogicalTexts(sourceTexts);
    dropped = unmapped;
    if (dropped.length > 0 && !options.allowLoss) {
      throw new GyozaError(
        "usage",
        `a ${targetContainer.toUpperCase()} copy cannot hold ${dropped.join(", ")}`,
        {
          file: source.name,
          fix: `write a ${sourceContainer.toUpperCase()} target to keep everything, or pass --allow-loss to drop them`,
        },
      );
    }
    bytes = writeLogical(target, targetContainer, logical);
  }
  const written = textsByKey((await readMetadataOf({ bytes, name: target.name })).texts);
  const same =
    sourceContainer === targetContainer
      ? isDeepStrictEqual(written, sourceTexts)
      : isDeepStrictEqual(comparable(detectGeneration(written)), comparable(detectGeneration(sourceTexts)));
  if (!same) {
    throw new GyozaError("format", "the copied metadata would not read back the same; nothing was written", {
      file: target.name,
    });
  }
  return { bytes, carried: Object.keys(written), dropped, replaced };
}

/** Removes all text metadata (PNG text/eXIf, JPEG EXIF/XMP/IPTC/COM, WebP EXIF/XMP); pixels stay byte-identical. */
export async function stripMetadata(image: ImageBytes): Promise<MetadataWriteResult> {
  const container = containerOf(image, true);
  const replaced = Object.keys(textsByKey((await readMetadataOf(image)).texts));
  const bytes =
    container === "png"
      ? replacePngMetadata(image.bytes, [], image.name)
      : container === "jpeg"
        ? replaceJpegMetadata(image.bytes, [], image.name)
        : replaceWebpMetadata(image.bytes, { exif: null, xmp: null }, image.name);
  return { bytes, carried: [], dropped: [], replaced };
}

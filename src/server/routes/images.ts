import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename } from "node:path";
import type { FastifyInstance } from "fastify";
import { copyMetadata, type ImageBytes, readMetadataOf } from "../../image/carry-metadata.js";
import { detectGeneration } from "../../image/detect-generation.js";
import { textsByKey } from "../../image/metadata-types.js";
import { sniffContainer } from "../../image/read-image-metadata.js";
import { writeFileAtomically } from "../../io/atomic-file.js";
import { ioError } from "../../io/byte-source.js";
import { findEntries } from "../../library/index.js";
import { imageResources } from "../../library/library-images.js";
import {
  CopyMetadataRequestSchema,
  type CopyMetadataResponse,
  type ImageInspectResponse,
  type ImageRef,
} from "../api-schemas.js";
import type { ServerContext } from "../create-server.js";
import { HttpError, parseWith } from "../http-errors.js";
import { COPY_METADATA_BODY_LIMIT, IMAGE_BODY_LIMIT } from "../limits.js";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function tooLarge(name: string, size: number): HttpError {
  return new HttpError(
    413,
    "too-large",
    `${name}: ${size} bytes is over the ${IMAGE_BODY_LIMIT}-byte image limit`,
    "images up to 32 MiB",
  );
}

/** An image from a request: base64 bytes (checked strictly), or a file confined to the allowed folders. */
async function imageOf(ref: ImageRef, what: string, context: ServerContext): Promise<ImageBytes> {
  if ("base64" in ref) {
    const text = ref.base64;
    if (text.length % 4 !== 0 || !BASE64.test(text))
      throw new HttpError(400, "usage", `body.${what}.base64 is not base64`);
    const bytes = Buffer.from(text, "base64");
    if (bytes.length > IMAGE_BODY_LIMIT) throw tooLarge(ref.name, bytes.length);
    return { bytes, name: basename(ref.name) };
  }
  const path = context.confine(ref.path);
  let size: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new HttpError(400, "usage", `${ref.path} is not a file`);
    size = info.size;
  } catch (cause) {
    if (cause instanceof HttpError) throw cause;
    throw ioError(path, cause);
  }
  if (size > IMAGE_BODY_LIMIT) throw tooLarge(ref.path, size);
  try {
    return { bytes: await readFile(path), name: path };
  } catch (cause) {
    throw ioError(path, cause);
  }
}

/** Dropped images: their generation data and the library files (model versions) they name; metadata carried between images. */
export function registerImageRoutes(app: FastifyInstance, context: ServerContext): void {
  app.post(
    "/api/images/copy-metadata",
    { bodyLimit: COPY_METADATA_BODY_LIMIT },
    async (request): Promise<CopyMetadataResponse> => {
      const body = parseWith(CopyMetadataRequestSchema, request.body, "body");
      const output = body.output === undefined ? undefined : context.confine(body.output);
      if (output !== undefined && !body.replace && existsSync(output)) {
        throw new HttpError(
          409,
          "output-exists",
          `${output} exists; writing would replace it`,
          "choose another output path, or send replace: true",
        );
      }
      const source = await imageOf(body.source, "source", context);
      const target = await imageOf(body.target, "target", context);
      const result = await copyMetadata(source, target, {
        allowLoss: body.allowLoss ?? false,
        ...(output !== undefined ? { outputName: output } : {}),
      });
      if (output !== undefined) await writeFileAtomically(output, result.bytes);
      const container = sniffContainer(result.bytes.subarray(0, 12));
      return {
        output: output ?? null,
        base64: output === undefined ? Buffer.from(result.bytes).toString("base64") : null,
        container: container as CopyMetadataResponse["container"],
        carried: result.carried,
        dropped: result.dropped,
        replaced: result.replaced,
      };
    },
  );

  app.register(async (scope) => {
    // Raw bytes for this route only; every other route takes JSON (1 MiB).
    scope.addContentTypeParser(
      ["image/png", "image/jpeg", "image/webp", "image/avif", "application/octet-stream"],
      { parseAs: "buffer", bodyLimit: IMAGE_BODY_LIMIT },
      (_request, body, done) => done(null, body),
    );
    scope.post(
      "/api/images/inspect",
      { bodyLimit: IMAGE_BODY_LIMIT },
      async (request): Promise<ImageInspectResponse> => {
        const body = request.body;
        if (!Buffer.isBuffer(body) || body.length === 0) {
          throw new HttpError(
            400,
            "usage",
            "send the image's bytes as the body",
            "Content-Type: image/png (or jpeg, webp, avif)",
          );
        }
        const metadata = await readMetadataOf({ bytes: body, name: "image" });
        const metadataTexts = textsByKey(metadata.texts);
        const generation = detectGeneration(metadataTexts) ?? null;
        const matches: ImageInspectResponse["matches"] = [];
        for (const resource of generation ? imageResources(generation) : []) {
          if (!resource.hash) continue;
          for (const file of findEntries(context.store, { hash: resource.hash })) {
            const version = file.versions[0];
            matches.push({
              model: version?.model.name ?? null,
              version: version?.name ?? null,
              file,
              hash: resource.hash,
            });
          }
        }
        return { generation, metadataTexts, matches };
      },
    );
  });
}

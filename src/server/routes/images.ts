import type { FastifyInstance } from "fastify";
import { readMetadataOf } from "../../image/carry-metadata.js";
import { detectGeneration } from "../../image/detect-generation.js";
import { textsByKey } from "../../image/metadata-types.js";
import { findEntries } from "../../library/index.js";
import { imageResources } from "../../library/library-images.js";
import type { ImageInspectResponse } from "../api-schemas.js";
import type { ServerContext } from "../create-server.js";
import { HttpError } from "../http-errors.js";
import { IMAGE_BODY_LIMIT } from "../limits.js";

/** Dropped images: their generation data and the library files (model versions) they name. */
export function registerImageRoutes(app: FastifyInstance, context: ServerContext): void {
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

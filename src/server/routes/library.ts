import { createReadStream } from "node:fs";
import type { FastifyInstance } from "fastify";
import { isGyozaError } from "../../errors.js";
import { type FindQuery, findEntries, listEntries, listModels, modelPage } from "../../library/index.js";
import { LibraryImages } from "../../library/library-images.js";
import { builtinPresets } from "../../merge/presets.js";
import { slotsOf } from "../../merge/slots.js";
import { makeThumbnail } from "../../page/thumbnails.js";
import {
  FamilySchema,
  FilesQuerySchema,
  type LayoutResponse,
  type ModelSummary,
  type PresetEntry,
  PresetsQuerySchema,
} from "../api-schemas.js";
import type { ServerContext } from "../create-server.js";
import { HttpError, parseWith } from "../http-errors.js";

const IMAGE_TYPES: Record<string, string> = {
  png: "image/png",
  jpeg: "image/jpeg",
  webp: "image/webp",
  avif: "image/avif",
};

/** Library, presets and layouts: read-only views of what `gyoza library` and `gyoza presets` show. */
export function registerLibraryRoutes(app: FastifyInstance, context: ServerContext): void {
  const { store } = context;

  app.get(
    "/api/library/models",
    async (): Promise<ModelSummary[]> =>
      listModels(store).map((row) => ({
        id: row.id,
        name: row.name,
        type: row.type,
        civitaiModelId: row.civitai_model_id,
        source: row.source,
      })),
  );

  app.get<{ Params: { ref: string } }>("/api/library/models/:ref", async (request) => {
    try {
      return modelPage(store, request.params.ref);
    } catch (error) {
      // "no model … is called X" / "X has no version Y": a 404 with the library's own message and fix.
      if (isGyozaError(error, "usage") && /^no model|has no version/.test(error.message)) {
        throw new HttpError(404, "not-found", error.message, error.fix);
      }
      throw error;
    }
  });

  app.get("/api/library/files", async (request) => {
    const { token: _token, ...query } = parseWith(FilesQuerySchema, request.query, "query");
    const filters = Object.fromEntries(
      Object.entries(query).filter(([, value]) => value !== undefined && value !== ""),
    );
    return Object.keys(filters).length === 0 ? listEntries(store) : findEntries(store, filters as FindQuery);
  });

  const imageOf = (id: string) => {
    const row = /^\d+$/.test(id) ? new LibraryImages(store.db).byId(Number(id)) : undefined;
    if (!row || row.missing) throw new HttpError(404, "not-found", `no image ${id} in the library`);
    return row;
  };

  app.get<{ Params: { id: string } }>("/api/library/images/:id/original", async (request, reply) => {
    const row = imageOf(request.params.id);
    return reply
      .type(IMAGE_TYPES[row.container ?? ""] ?? "application/octet-stream")
      .header("X-Content-Type-Options", "nosniff")
      .send(createReadStream(row.path));
  });

  app.get<{ Params: { id: string } }>("/api/library/images/:id/thumbnail", async (request, reply) => {
    const row = imageOf(request.params.id);
    const thumbnail = await makeThumbnail(row.path);
    if (!thumbnail.ok) throw new HttpError(400, "format", `${row.path}: ${thumbnail.problem}`);
    return reply.type("image/webp").header("X-Content-Type-Options", "nosniff").send(thumbnail.bytes);
  });

  app.get("/api/presets", async (request): Promise<PresetEntry[]> => {
    const { family } = parseWith(PresetsQuerySchema, request.query, "query");
    const table = builtinPresets.get(family ?? "sd1");
    if (!table) throw new HttpError(404, "not-found", `no presets for ${family}`);
    return [...table.values()].map((preset) => ({
      name: preset.name,
      weights: [preset.base, ...preset.unet],
    }));
  });

  app.get<{ Params: { family: string } }>(
    "/api/layouts/:family",
    async (request): Promise<LayoutResponse> => {
      const family = parseWith(FamilySchema, request.params.family, "family");
      return { family, slots: [...slotsOf(family)] };
    },
  );
}

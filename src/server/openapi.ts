import * as z from "../zod.js";
import {
  ApiErrorSchema,
  AutomixRatingRequestSchema,
  CopyMetadataRequestSchema,
  FilesQuerySchema,
  JobRequestSchema,
  KEPT_FINISHED_JOBS,
  PresetsQuerySchema,
  RecipePlanRequestSchema,
  WeightsParseRequestSchema,
} from "./api-schemas.js";

type Operation = { summary: string; body?: z.ZodMiniType; query?: z.ZodMiniType; raw?: string };

const ROUTES: Record<string, Record<string, Operation>> = {
  "/api/health": { get: { summary: "version, library path, allowed roots" } },
  "/api/library/models": { get: { summary: "every model of the library (listModels)" } },
  "/api/library/models/{ref}": {
    get: { summary: "one model with its versions (modelPage); ref is MODEL[@VERSION]" },
  },
  "/api/library/files": {
    get: { summary: "library files, filtered (findEntries)", query: FilesQuerySchema },
  },
  "/api/library/images/{id}/original": { get: { summary: "a library image's bytes" } },
  "/api/library/images/{id}/thumbnail": { get: { summary: "a library image's WebP thumbnail" } },
  "/api/presets": { get: { summary: "built-in block-weight presets", query: PresetsQuerySchema } },
  "/api/layouts/{family}": { get: { summary: "block slot names of a family" } },
  "/api/weights/parse": {
    post: { summary: "parse block-weight text strictly", body: WeightsParseRequestSchema },
  },
  "/api/recipes/plan": {
    post: { summary: "load a recipe and show its merge plan", body: RecipePlanRequestSchema },
  },
  "/api/jobs": {
    get: {
      summary: `every queued and running job and the last ${KEPT_FINISHED_JOBS} finished ones (older finished jobs are dropped, and then 404)`,
    },
    post: {
      summary:
        "queue a job (202 {id}): kind merge (a recipe), diff (per-block similarity of a and b), recover (a merge's block weights from its two parents) or parents (rank candidate parents of a merge); one runs at a time, progress on /events, results on the job",
      body: JobRequestSchema,
    },
  },
  "/api/jobs/{id}": {
    get: { summary: "one job with its progress and result" },
    delete: { summary: "cancel a job (no partial file is left)" },
  },
  "/api/jobs/{id}/events": { get: { summary: "Server-Sent Events: progress, done, failed, cancelled" } },
  "/api/images/inspect": {
    post: { summary: "generation data of an image and the library files it names", raw: "image/*" },
  },
  "/api/images/copy-metadata": {
    post: {
      summary:
        "the target image with the source's metadata, pixels untouched: returned as base64, or written atomically to `output` (inside the allowed folders; an existing file only with replace)",
      body: CopyMetadataRequestSchema,
    },
  },
  "/api/grids": {
    get: {
      summary:
        "grids made by gyoza grid under the allowed folders (folders holding a grid.json): axes in the user's terms, cell counts; an unreadable grid.json is listed with its problem",
    },
  },
  "/api/grids/{id}": {
    get: {
      summary:
        "one grid's index: axes with their labels (OUT03 = 0.2), cells with x/y/z, status, error, image and recipe paths",
    },
  },
  "/api/grids/{id}/image": { get: { summary: "the whole labelled grid.png" } },
  "/api/grids/{id}/cells/{n}/image": { get: { summary: "a cell's PNG (with its generation metadata)" } },
  "/api/grids/{id}/cells/{n}/recipe": {
    get: { summary: "a cell's recipe as YAML, paths relative to the server's base folder, for the builder" },
  },
  "/api/automix/studies": {
    get: {
      summary: "automix studies in the library: optimizer, seed, budget, status, trial counts, best score",
    },
  },
  "/api/automix/studies/{name}": {
    get: {
      summary:
        "one study: settings, trials (score, per-objective tallies, weights in block terms, image links), best-so-far series, per-coordinate importance, trials awaiting a rating (pendingRatings)",
    },
  },
  "/api/automix/studies/{name}/trials/{n}/images/{i}": {
    get: {
      summary: "a trial's image (only a file the trial record names, inside the study's images.out folder)",
    },
  },
  "/api/automix/studies/{name}/trials/{n}/rating": {
    post: {
      summary:
        "a person's rating of a trial a manual scorer waits on: {scores: [one finite number per image]} or {best: image index} (1 for it, 0 for the rest); 404 unknown study or trial, 409 not awaiting a rating or rated already, 400 a wrong body",
      body: AutomixRatingRequestSchema,
    },
  },
  "/api/automix/studies/{name}/best-recipe": {
    get: {
      summary: "the best trial's candidate as recipe YAML (as gyoza automix best writes), for the builder",
    },
  },
};

/** The OpenAPI 3.1 document of the API, generated from the zod schemas of api-schemas.ts. */
export function openApiDocument(version: string): unknown {
  const error = z.toJSONSchema(ApiErrorSchema, { io: "input" });
  const paths: Record<string, unknown> = {};
  for (const [path, operations] of Object.entries(ROUTES)) {
    const item: Record<string, unknown> = {};
    for (const [method, operation] of Object.entries(operations)) {
      const parameters: unknown[] = [...path.matchAll(/\{(\w+)\}/g)].map((match) => ({
        name: match[1],
        in: "path",
        required: true,
        schema: { type: "string" },
      }));
      if (operation.query) {
        const schema = z.toJSONSchema(operation.query, { io: "input" }) as {
          properties?: Record<string, unknown>;
        };
        for (const [name, property] of Object.entries(schema.properties ?? {}))
          parameters.push({ name, in: "query", required: false, schema: property });
      }
      item[method] = {
        summary: operation.summary,
        security: [{ bearer: [] }, { tokenQuery: [] }],
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(operation.body
          ? {
              requestBody: {
                required: true,
                content: { "application/json": { schema: z.toJSONSchema(operation.body, { io: "input" }) } },
              },
            }
          : {}),
        ...(operation.raw
          ? {
              requestBody: {
                required: true,
                content: { [operation.raw]: { schema: { type: "string", format: "binary" } } },
              },
            }
          : {}),
        responses: {
          "200": { description: "OK" },
          default: { description: "error", content: { "application/json": { schema: error } } },
        },
      };
    }
    paths[path] = item;
  }
  return {
    openapi: "3.1.0",
    info: { title: "gyoza serve", version },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer" },
        tokenQuery: { type: "apiKey", in: "query", name: "token" },
      },
    },
    paths,
  };
}

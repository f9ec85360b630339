import { existsSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { type JobCreated, JobRequestSchema, type JobView } from "../api-schemas.js";
import type { ServerContext } from "../create-server.js";
import { HttpError, parseWith } from "../http-errors.js";
import { diffWork, parentsWork, recoverWork } from "./analyse.js";
import { loadConfinedRecipe } from "./recipes.js";

/** Jobs (merges, diffs, recoveries, parent rankings): queue, list, progress (JSON and Server-Sent Events), cancel. */
export function registerJobRoutes(app: FastifyInstance, context: ServerContext): void {
  const { jobs } = context;

  app.post("/api/jobs", async (request, reply): Promise<JobCreated> => {
    const body = parseWith(JobRequestSchema, request.body, "body");
    // paths are resolved (and confined) now: a refused one is this request's 403/404, not a failed job
    if (body.kind !== "merge") {
      const work =
        body.kind === "diff"
          ? diffWork(body, context)
          : body.kind === "recover"
            ? recoverWork(body, context)
            : await parentsWork(body, context);
      void reply.status(202);
      return { id: jobs.enqueue(work).id };
    }
    const { yaml, replace } = body;
    const { recipe, baseDir, output } = loadConfinedRecipe(yaml, context);
    if (!replace && existsSync(output)) {
      throw new HttpError(
        409,
        "output-exists",
        `${output} exists; a merge would replace it`,
        "choose another output path, or send replace: true",
      );
    }
    const view = jobs.submit(recipe, output, baseDir);
    void reply.status(202);
    return { id: view.id };
  });

  app.get("/api/jobs", async (): Promise<JobView[]> => jobs.list());
  app.get<{ Params: { id: string } }>(
    "/api/jobs/:id",
    async (request): Promise<JobView> => jobs.get(request.params.id),
  );
  app.delete<{ Params: { id: string } }>(
    "/api/jobs/:id",
    async (request): Promise<JobView> => jobs.cancel(request.params.id),
  );

  app.get<{ Params: { id: string } }>("/api/jobs/:id/events", async (request, reply) => {
    const current = jobs.get(request.params.id);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache, no-store",
      Connection: "keep-alive",
      "X-Accel-Buffering": "no",
    });
    const send = (event: string, view: JobView) =>
      raw.write(`event: ${event}\ndata: ${JSON.stringify(view)}\n\n`);
    const final = current.state === "done" || current.state === "failed" || current.state === "cancelled";
    send(final ? current.state : "progress", current);
    if (final) {
      raw.end();
      return;
    }
    const unsubscribe = jobs.subscribe(current.id, (event, view) => {
      send(event, view);
      if (event !== "progress") raw.end();
    });
    const heartbeat = setInterval(() => raw.write(": keep-alive\n\n"), 15_000);
    raw.on("close", () => {
      clearInterval(heartbeat);
      unsubscribe();
    });
  });
}

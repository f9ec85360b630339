import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { resolve } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { GyozaError } from "../errors.js";
import { loadKernel } from "../kernels/index.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { LibraryStore, openLibrary } from "../library/index.js";
import type { HealthResponse } from "./api-schemas.js";
import { confinePath } from "./confine-paths.js";
import { errorAnswer } from "./http-errors.js";
import { JobQueue } from "./jobs.js";
import { JSON_BODY_LIMIT } from "./limits.js";
import { openApiDocument } from "./openapi.js";
import { registerAutomixRoutes } from "./routes/automix.js";
import { registerGridRoutes } from "./routes/grids.js";
import { registerImageRoutes } from "./routes/images.js";
import { registerJobRoutes } from "./routes/jobs.js";
import { registerLibraryRoutes } from "./routes/library.js";
import { registerRecipeRoutes } from "./routes/recipes.js";

export { IMAGE_BODY_LIMIT, JSON_BODY_LIMIT } from "./limits.js";

export interface ServerOptions {
  /** The library database (opened, or created, here; closed by `close()`). */
  library: string;
  /** `--models` folders: paths in requests may name files inside these and the library roots. */
  roots?: readonly string[];
  /** The API token; a random one (24 bytes, base64url) when not given. */
  token?: string;
  /** Default 127.0.0.1. Anything but loopback needs an explicit `token`. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** The built client (default `dist/web` beside the package). */
  webDir?: string;
}

/** What a route needs: the store, the allowed folders, the job queue, the kernel. */
export interface ServerContext {
  readonly store: LibraryStore;
  readonly libraryPath: string;
  readonly jobs: JobQueue;
  kernel(): Promise<MergeKernel>;
  /** Library roots (now: a finished job adds its output) and the --models folders. */
  allowedRoots(): string[];
  /** Where relative paths in requests and recipes start: the first --models folder, else the first library root. */
  baseDir(): string;
  /** A request path confined to the allowed roots (403 otherwise), absolute. */
  confine(path: string): string;
}

export interface GyozaServer {
  readonly app: FastifyInstance;
  readonly token: string;
  readonly context: ServerContext;
  /** Listens on host:port; returns the start URL with the token (`http://127.0.0.1:PORT/?token=…`). */
  listen(): Promise<string>;
  /** Cancels jobs (no partial outputs), stops listening, closes the library. */
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function newToken(): string {
  return randomBytes(24).toString("base64url");
}

/** Constant-time token comparison (both sides hashed first, so lengths never leak either). */
export function tokenMatches(given: string, token: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(token).digest();
  return timingSafeEqual(a, b);
}

function packageVersion(): string {
  try {
    const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
    return String((JSON.parse(text) as { version?: unknown }).version ?? "unknown");
  } catch {
    return "unknown";
  }
}

function defaultWebDir(): string {
  try {
    return resolve(new URL("../../dist/web", import.meta.url).pathname);
  } catch {
    return resolve("dist/web");
  }
}

/**
 * The `gyoza serve` app: a Fastify instance with the JSON API under /api (token on every call,
 * Host checked against the bound address, foreign Origins refused on state-changing calls, no CORS,
 * body limits) and the built client at /. No global state: tests run several at once.
 */
export async function createServer(options: ServerOptions): Promise<GyozaServer> {
  const host = options.host ?? "127.0.0.1";
  if (!isLoopback(host) && options.token === undefined) {
    throw new GyozaError(
      "usage",
      `refusing to listen on ${host} without --token: anyone who can reach it could read and write your models`,
      { fix: "give --token with a long random secret, or keep the default --host 127.0.0.1" },
    );
  }
  if (options.token !== undefined && options.token.length < 16) {
    throw new GyozaError("usage", "--token is shorter than 16 characters", {
      fix: "use a long random token",
    });
  }
  const token = options.token ?? newToken();
  const libraryPath = resolve(options.library);
  const db = openLibrary(libraryPath);
  const store = new LibraryStore(db);
  const modelRoots = (options.roots ?? []).map((root) => resolve(root));
  let kernelPromise: Promise<MergeKernel> | undefined;
  const kernel = () => {
    kernelPromise ??= loadKernel();
    return kernelPromise;
  };
  const jobs = new JobQueue(store, kernel);
  const allowedRoots = () => [...modelRoots, ...store.roots()];
  const context: ServerContext = {
    store,
    libraryPath,
    jobs,
    kernel,
    allowedRoots,
    baseDir: () => allowedRoots()[0] ?? process.cwd(),
    confine: (path) => confinePath(path, context.baseDir(), allowedRoots()),
  };

  // Loaded here, not at module load: the bundled CLI keeps Fastify outside (like sharp), so the other
  // commands never read it.
  const { default: Fastify } = await import("fastify");
  const { default: fastifyStatic } = await import("@fastify/static");
  // maxParamLength: a grid's id is its folder path (base64url); Fastify's default of 100 characters
  // would answer 404 for any grid deeper than a short path.
  const app = Fastify({
    bodyLimit: JSON_BODY_LIMIT,
    logger: false,
    forceCloseConnections: true,
    maxParamLength: 8192,
  });
  let boundHosts: Set<string> | undefined;

  app.setErrorHandler((error, _request, reply) => {
    const { status, body } = errorAnswer(error);
    void reply.status(status).type("application/json").send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({
      error: { code: "not-found", message: `no route ${request.method} ${request.url.split("?")[0]}` },
    });
  });

  app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
    // DNS rebinding: a page on another name resolving to this address sends its own Host.
    if (boundHosts && !boundHosts.has(String(request.headers.host ?? "").toLowerCase())) {
      return reply.status(403).send({
        error: {
          code: "forbidden-host",
          message: `Host ${request.headers.host ?? "(none)"} is not this server`,
        },
      });
    }
    // By the route matched, not the raw URL: the router decodes `/%61pi/health` to an /api route.
    const route = request.routeOptions.url ?? "";
    if (!route.startsWith("/api") && !decodedPath(request.url).startsWith("/api")) return;
    const header = request.headers.authorization;
    const query = request.query as Record<string, unknown> | undefined;
    const given = header?.startsWith("Bearer ")
      ? header.slice("Bearer ".length)
      : typeof query?.token === "string"
        ? query.token
        : undefined;
    if (given === undefined || !tokenMatches(given, token)) {
      return reply.status(401).send({
        error: {
          code: "token",
          message: "missing or wrong token",
          fix: "open the URL gyoza serve printed (it carries ?token=…), or send Authorization: Bearer TOKEN",
        },
      });
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      // CSRF: browsers send Origin on cross-origin writes; only this server's own pages may write.
      const origin = request.headers.origin;
      if (origin !== undefined && !boundHosts?.has(originHost(origin))) {
        return reply.status(403).send({
          error: { code: "forbidden-origin", message: `requests from ${origin} are refused` },
        });
      }
    }
  });

  // The token travels in the page URL: no Referer carries it to a linked site; no framing (clickjacking);
  // API answers are never cached.
  app.addHook("onSend", async (request, reply) => {
    void reply.header("Referrer-Policy", "no-referrer");
    void reply.header("X-Content-Type-Options", "nosniff");
    void reply.header("X-Frame-Options", "DENY");
    if (request.url.startsWith("/api")) void reply.header("Cache-Control", "no-store");
  });

  app.get(
    "/api/health",
    async (): Promise<HealthResponse> => ({
      version: packageVersion(),
      library: libraryPath,
      roots: allowedRoots(),
      baseDir: context.baseDir(),
    }),
  );
  app.get("/api/openapi.json", async () => openApiDocument(packageVersion()));
  registerLibraryRoutes(app, context);
  registerRecipeRoutes(app, context);
  registerJobRoutes(app, context);
  registerImageRoutes(app, context);
  registerGridRoutes(app, context);
  registerAutomixRoutes(app, context);

  const webDir = options.webDir ?? defaultWebDir();
  if (existsSync(resolve(webDir, "index.html"))) {
    await app.register(fastifyStatic, { root: webDir, prefix: "/", wildcard: true });
  } else {
    app.get("/", async (_request, reply) =>
      reply
        .type("text/html; charset=utf-8")
        .send(
          "<!doctype html><title>gyoza serve</title><p>The gyoza web client is not built: run <code>npm run build</code>. The JSON API is at <code>/api</code> (see <code>/api/openapi.json</code>).</p>",
        ),
    );
  }

  return {
    app,
    token,
    context,
    async listen() {
      await app.listen({ host, port: options.port ?? 0 });
      const address = app.server.address();
      const port = typeof address === "object" && address ? address.port : (options.port ?? 0);
      const names = ["127.0.0.1", "localhost", "[::1]", ...hostNames(host)];
      boundHosts = new Set(names.map((name) => `${name}:${port}`.toLowerCase()));
      const shown = host.includes(":") ? `[${host}]` : host;
      return `http://${shown}:${port}/?token=${token}`;
    },
    async close() {
      await jobs.close();
      await app.close();
      db.close();
    },
  };
}

/** The names a browser may use for this server: the bound host, or every local address when bound to all. */
function hostNames(host: string): string[] {
  const bracket = (name: string) => (name.includes(":") ? `[${name}]` : name);
  if (host !== "0.0.0.0" && host !== "::") return [bracket(host)];
  const addresses = Object.values(networkInterfaces())
    .flat()
    .map((entry) => entry?.address)
    .filter((address): address is string => typeof address === "string");
  return [hostname(), ...addresses].map(bracket);
}

function decodedPath(url: string): string {
  const path = url.split("?")[0] ?? "";
  try {
    return decodeURIComponent(path).toLowerCase();
  } catch {
    return path.toLowerCase();
  }
}

function originHost(origin: string): string {
  try {
    const url = new URL(origin);
    return url.host.toLowerCase();
  } catch {
    return "";
  }
}

import { isGyozaError } from "../errors.js";
import type * as z from "../zod.js";
import type { ApiError } from "./api-schemas.js";

/** An error answer with its HTTP status: thrown by routes, turned into `{error: {code, message, fix?}}`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fix?: string,
  ) {
    super(message);
  }
}

/** Any thrown value → HTTP status and the error body. GyozaErrors the caller caused are 400s. */
export function errorAnswer(error: unknown): { status: number; body: ApiError } {
  if (error instanceof HttpError) {
    return {
      status: error.status,
      body: { error: { code: error.code, message: error.message, ...(error.fix ? { fix: error.fix } : {}) } },
    };
  }
  if (isGyozaError(error)) {
    const status = error.code === "io" && /ENOENT|not found|no such file/i.test(error.message) ? 404 : 400;
    return {
      status: error.code === "interrupted" ? 409 : status,
      body: {
        error: {
          code: error.code,
          message: error.message,
          ...(error.fix ? { fix: error.fix } : {}),
          ...(error.path ? { path: error.path } : {}),
        },
      },
    };
  }
  const fastifyError = error as { statusCode?: number; code?: string; message?: string };
  if (typeof fastifyError.statusCode === "number" && fastifyError.statusCode < 500) {
    const status = fastifyError.statusCode;
    return {
      status,
      body: {
        error: {
          code: status === 413 ? "too-large" : status === 415 ? "unsupported-media-type" : "bad-request",
          message: String(fastifyError.message ?? "bad request"),
          ...(status === 413 ? { fix: "send a smaller body (JSON ≤ 1 MiB, images ≤ 32 MiB)" } : {}),
        },
      },
    };
  }
  return {
    status: 500,
    body: { error: { code: "internal", message: error instanceof Error ? error.message : String(error) } },
  };
}

/** Validates a body or query with a zod schema: 400 `usage` naming the first bad field. */
export function parseWith<T>(schema: z.ZodMiniType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${what}.${issue.path.join(".")}` : what;
  throw new HttpError(400, "usage", `${where}: ${issue?.message ?? "invalid"}`, "see GET /api/openapi.json");
}

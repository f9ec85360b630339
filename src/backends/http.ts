import { GyozaError } from "../errors.js";
import type { BackendConfig } from "./types.js";

/** How a backend is named in messages: "ComfyUI at http://…" / "A1111 at http://…". */
export function backendLabel(config: BackendConfig): string {
  return `${config.kind === "comfyui" ? "ComfyUI" : "A1111"} at ${config.url}`;
}

/** The most a JSON answer or an image from a backend may be (bytes): bigger is refused, not buffered. */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

export interface BackendRequest {
  method?: "GET" | "POST" | "DELETE";
  /** Sent as JSON. */
  json?: unknown;
  signal?: AbortSignal | undefined;
  /** Longest wait for the answer's headers and body (ms). */
  timeoutMs?: number;
}

/**
 * One HTTP call to a backend: the configured headers sent, the caller's signal and a timeout
 * honoured, and a down or unreachable backend, a timeout and an abort turned into GyozaErrors
 * ("network" / "interrupted"). The answer is returned whatever its status: callers read the error
 * bodies, which differ per backend.
 */
export async function backendFetch(
  config: BackendConfig,
  path: string,
  request: BackendRequest = {},
): Promise<Response> {
  const timeoutMs = request.timeoutMs ?? 30_000;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = request.signal ? AbortSignal.any([request.signal, timeout]) : timeout;
  const headers: Record<string, string> = { ...config.headers };
  if (request.json !== undefined) headers["content-type"] = "application/json";
  try {
    return await fetch(`${config.url}${path}`, {
      method: request.method ?? (request.json === undefined ? "GET" : "POST"),
      headers,
      ...(request.json === undefined ? {} : { body: JSON.stringify(request.json) }),
      signal,
    });
  } catch (cause) {
    throw fetchFailure(config, path, cause, request.signal, timeout, timeoutMs);
  }
}

/** The body of an answer as text, at most MAX_RESPONSE_BYTES. */
export async function readBody(config: BackendConfig, path: string, response: Response): Promise<Buffer> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > MAX_RESPONSE_BYTES) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge(config, path);
  }
  if (!response.body) return Buffer.alloc(0);
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > MAX_RESPONSE_BYTES) throw tooLarge(config, path);
      parts.push(Buffer.from(chunk));
    }
  } catch (cause) {
    if (cause instanceof GyozaError) throw cause;
    throw new GyozaError(
      "network",
      `${backendLabel(config)}: the answer to ${path} broke off: ${describeCause(cause)}`,
      {
        cause,
      },
    );
  }
  return Buffer.concat(parts);
}

/** The answer's body parsed as JSON; a body that is not JSON is a clear error naming the route. */
export async function readJson(config: BackendConfig, path: string, response: Response): Promise<unknown> {
  const text = (await readBody(config, path, response)).toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    throw new GyozaError(
      "network",
      `${backendLabel(config)} answered ${path} with something that is not JSON (HTTP ${response.status}): ${clip(text, 200)}`,
      {
        fix: `check that the url in gyoza.yaml points at ${config.kind === "comfyui" ? "ComfyUI" : "A1111/Forge (started with --api)"}`,
      },
    );
  }
}

function tooLarge(config: BackendConfig, path: string): GyozaError {
  return new GyozaError(
    "limit",
    `${backendLabel(config)}: the answer to ${path} is over ${MAX_RESPONSE_BYTES} bytes`,
  );
}

/** The GyozaError for a failed fetch: aborted by the caller, timed out, or not reachable. */
export function fetchFailure(
  config: BackendConfig,
  path: string,
  cause: unknown,
  callerSignal: AbortSignal | undefined,
  timeout: AbortSignal | undefined,
  timeoutMs: number,
): GyozaError {
  if (callerSignal?.aborted) {
    return new GyozaError("interrupted", `stopped while waiting for ${backendLabel(config)}`, {
      cause: callerSignal.reason,
    });
  }
  if (timeout?.aborted) {
    return new GyozaError(
      "network",
      `${backendLabel(config)} did not answer ${path} within ${Math.round(timeoutMs / 100) / 10} s`,
      {
        fix: "check that it is running and not stuck; raise timeout_seconds in gyoza.yaml for slow cards",
        cause,
      },
    );
  }
  return new GyozaError("network", `${backendLabel(config)} is not reachable: ${describeCause(cause)}`, {
    fix: `start it (${config.kind === "comfyui" ? "python main.py --listen" : "webui with --api"}), or fix the url in gyoza.yaml`,
    cause,
  });
}

/** The innermost useful words of a fetch failure ("connect ECONNREFUSED 127.0.0.1:8188"). */
export function describeCause(cause: unknown): string {
  let current: unknown = cause;
  let text = "";
  for (let depth = 0; depth < 5 && current; depth++) {
    const error = current as { message?: string; code?: string; cause?: unknown };
    if (error.message) text = error.message;
    if (error.code && !text.includes(error.code)) text = `${error.code}: ${text}`;
    current = error.cause;
  }
  return text || String(cause);
}

export function clip(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Resolves after `ms`, or rejects with the signal's abort. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

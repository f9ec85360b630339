import type { ApiError } from "../../../src/server/api-schemas.js";

/** The token comes in the start URL (`/?token=…`) and is kept for this tab only. */
function readToken(): string {
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl) {
    sessionStorage.setItem("gyoza-token", fromUrl);
    return fromUrl;
  }
  return sessionStorage.getItem("gyoza-token") ?? "";
}

export const token = readToken();

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly error: ApiError["error"],
  ) {
    super(error.message);
  }
}

export async function api<T>(
  path: string,
  init: { method?: string; body?: unknown; raw?: Blob } = {},
): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  let body: BodyInit | undefined;
  if (init.raw) {
    body = init.raw;
    headers["Content-Type"] = init.raw.type || "application/octet-stream";
  } else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(`/api${path}`, {
    method: init.method ?? (body ? "POST" : "GET"),
    headers,
    body,
  });
  const text = await response.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiFailure(response.status, {
      code: "bad-answer",
      message: `HTTP ${response.status}: ${text.slice(0, 200)}`,
    });
  }
  if (!response.ok) {
    const error = (data as ApiError | null)?.error ?? { code: "http", message: `HTTP ${response.status}` };
    throw new ApiFailure(response.status, error);
  }
  return data as T;
}

/** A URL for <img>/EventSource, which cannot send headers. */
export function withToken(path: string): string {
  return `/api${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

export function errorText(error: unknown): string {
  if (error instanceof ApiFailure)
    return error.error.fix ? `${error.error.message} — ${error.error.fix}` : error.error.message;
  return error instanceof Error ? error.message : String(error);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

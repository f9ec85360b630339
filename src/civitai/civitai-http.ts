import { GyozaError } from "../errors.js";

/**
 * The body as UTF-8 text, refused past `maxBytes` (by Content-Length first, then while it
 * streams): a server that sends more is not Civitai's API, and its bytes are not held.
 */
export async function readLimitedText(response: Response, maxBytes: number, url: string): Promise<string> {
  const tooLarge = (): GyozaError =>
    new GyozaError("limit", `civitai: the answer to GET ${url} is larger than ${maxBytes} bytes`);
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!response.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * `Retry-After` in ms: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or
 * unreadable (then the client's own backoff applies).
 */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/** Why a fetch failed before any answer, in words: undici puts the system error in `cause`. */
export function transportReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  const code = cause?.code;
  const words: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    ECONNRESET: "connection reset",
    ENOTFOUND: "host not found",
    EAI_AGAIN: "host name lookup failed",
    ETIMEDOUT: "connection timed out",
    UND_ERR_SOCKET: "connection closed",
  };
  if (code && words[code]) return `${words[code]} (${code})`;
  const message = cause?.message ?? (error as Error | undefined)?.message ?? String(error);
  return code ? `${message} (${code})` : message;
}

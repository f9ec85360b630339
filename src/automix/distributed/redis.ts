import type { Redis } from "ioredis";
import { GyozaError } from "../../errors.js";

/**
 * A Redis connection for BullMQ from a `redis://host:port[/db]` URL. `maxRetriesPerRequest: null`
 * is what BullMQ's workers and queue events need (blocking commands wait across reconnects); the
 * coordinator bounds its own waits instead (see its `redisTimeoutMs`).
 */
export async function connectRedis(url: string): Promise<Redis> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GyozaError("usage", `"${url}" is not a Redis URL`, {
      fix: "give it as redis://HOST:PORT, e.g. redis://127.0.0.1:6379",
    });
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")
    throw new GyozaError("usage", `"${url}" is not a Redis URL`, {
      fix: "give it as redis://HOST:PORT, e.g. redis://127.0.0.1:6379",
    });
  // imported on first use: bullmq and ioredis stay outside the CLI bundle (see scripts/bundle-cli.mjs)
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: true, lazyConnect: false });
  // connection trouble is reported (once per change) by the BullMQ object using it; without a
  // listener ioredis would print every failed reconnect
  redis.on("error", () => {});
  return redis;
}

/** A URL without its password, for messages. */
export function redactedRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(invalid URL)";
  }
}

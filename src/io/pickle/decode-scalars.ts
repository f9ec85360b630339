import { type Fail, smallest } from "./allowlist.js";

/** Little-endian two's-complement integer (LONG1/LONG4). */
export function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.byteLength === 0) return 0;
  let value = 0n;
  for (let i = bytes.byteLength - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.byteLength - 1]! & 0x80) value -= 1n << BigInt(bytes.byteLength * 8);
  return smallest(value);
}

/** Protocol-0 STRING: a quoted literal; escapes are not needed by checkpoints and are refused. */
export function parseQuotedString(line: string, fail: Fail): string {
  const quote = line[0];
  if (line.length < 2 || (quote !== "'" && quote !== '"') || line.at(-1) !== quote) {
    throw fail("format", "STRING argument is not quoted");
  }
  const body = line.slice(1, -1);
  if (body.includes("\\")) throw fail("format", "STRING escapes are not supported");
  return body;
}

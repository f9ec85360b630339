import { describe, expect, it } from "vitest";
import { BufferPool } from "./buffer-pool.js";

describe("BufferPool", () => {
  it("reuses a released buffer's memory for any size of the same capacity class", () => {
    const pool = new BufferPool();
    const first = pool.acquire(100_000);
    expect(first.byteLength).toBe(100_000);
    first[0] = 42;
    pool.release(first);
    const second = pool.acquire(120_000);
    expect(second.byteLength).toBe(120_000);
    expect(second.buffer).toBe(first.buffer);
    expect(pool.acquire(100_000).buffer).not.toBe(first.buffer);
  });

  it("ignores buffers it did not hand out and double releases, and keeps no more than its limit", () => {
    const pool = new BufferPool(3 << 16);
    const foreign = new Uint8Array(65536);
    pool.release(foreign);
    expect(pool.acquire(65536).buffer).not.toBe(foreign.buffer);
    const a = pool.acquire(65536);
    pool.release(a);
    pool.release(a);
    const b = pool.acquire(65536);
    const c = pool.acquire(65536);
    expect([b.buffer === a.buffer, c.buffer === a.buffer]).toEqual([true, false]);
    const many = [pool.acquire(65536), pool.acquire(65536), pool.acquire(65536), pool.acquire(65536)];
    for (const buffer of many) pool.release(buffer);
    const again = [pool.acquire(65536), pool.acquire(65536), pool.acquire(65536), pool.acquire(65536)];
    expect(again.filter((buffer) => many.some((m) => m.buffer === buffer.buffer)).length).toBe(3);
  });
});

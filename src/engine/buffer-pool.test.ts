import { describe, expect, it } from "vitest";
import { BufferPool } from "./buffer-pool.js";

describe("BufferPool", () => {
  it("hands a released buffer out again for the same size, and never one it did not make", () => {
    const pool = new BufferPool();
    const first = pool.acquire(1024);
    pool.release(first);
    expect(pool.acquire(1024)).toBe(first);
    expect(pool.acquire(1024)).not.toBe(first);
    const foreign = new Uint8Array(1024);
    pool.release(foreign);
    expect(pool.acquire(1024)).not.toBe(foreign);
  });

  it("ignores views and double releases, and keeps no more than its limit", () => {
    const pool = new BufferPool(2048);
    const a = pool.acquire(1024);
    pool.release(a.subarray(0, 512));
    expect(pool.acquire(1024)).not.toBe(a);
    pool.release(a);
    pool.release(a);
    const b = pool.acquire(1024);
    const c = pool.acquire(1024);
    expect([b === a, c === a]).toEqual([true, false]);
    const big = [pool.acquire(1024), pool.acquire(1024), pool.acquire(1024)];
    for (const buffer of big) pool.release(buffer);
    const again = [pool.acquire(1024), pool.acquire(1024), pool.acquire(1024)];
    expect(again.filter((buffer) => big.includes(buffer)).length).toBe(2);
  });
});

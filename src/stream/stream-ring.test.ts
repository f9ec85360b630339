import { describe, expect, it } from "vitest";
import { BufferPool } from "./buffer-pool.js";
import { STREAM_ALIGN, StreamRing } from "./stream-ring.js";

const ring = (bytes: number) => new StreamRing(Buffer.alloc(bytes));

describe("StreamRing", () => {
  it("reclaims a buffer given back early only once every older one is back", () => {
    const r = ring(16 * STREAM_ALIGN);
    const [a, b, c] = [r.take(1000)!, r.take(STREAM_ALIGN)!, r.take(1)!];
    expect([a.byteOffset, b.byteOffset, c.byteOffset]).toEqual([0, 1024, 1024 + STREAM_ALIGN]);
    expect(a.byteLength).toBe(1000);
    expect(r.held).toBe(1024 + 2 * STREAM_ALIGN);
    expect(r.give(b)).toBe(true);
    expect(r.held).toBe(1024 + 2 * STREAM_ALIGN);
    expect(r.give(a)).toBe(true);
    expect(r.held).toBe(STREAM_ALIGN);
    expect(r.give(c)).toBe(true);
    expect(r.held).toBe(0);
    expect(r.take(16 * STREAM_ALIGN)?.byteOffset).toBe(0);
  });

  it("wraps to its start when the end has no room, and refuses what fits nowhere", () => {
    const r = ring(4096);
    const first = r.take(1024)!;
    const second = r.take(1024)!;
    r.take(1024);
    r.give(first);
    expect(r.take(2048)).toBeUndefined(); // 1024 free at the end, 1024 at the start
    const fourth = r.take(1024)!;
    expect(fourth.byteOffset).toBe(3072);
    r.give(second);
    const wrapped = r.take(2048)!;
    expect(wrapped.byteOffset).toBe(0);
    expect(r.take(1)).toBeUndefined(); // [0, 2048) wrapped, [2048, 4096) still held
    expect(r.held).toBe(4096);
  });

  it("never hands out overlapping memory, whatever the order buffers come back in", () => {
    const r = ring(64 * STREAM_ALIGN);
    let state = 12345;
    const random = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 2 ** 32;
    };
    const live: { view: Uint8Array; mark: number }[] = [];
    let refused = 0;
    for (let step = 0; step < 5000; step++) {
      if (live.length > 0 && random() < 0.45) {
        // mostly the oldest, sometimes one given back early
        const index = random() < 0.7 ? 0 : Math.floor(random() * live.length);
        const [gone] = live.splice(index, 1);
        expect(gone!.view.every((byte) => byte === gone!.mark)).toBe(true);
        expect(r.give(gone!.view)).toBe(true);
        continue;
      }
      const view = r.take(1 + Math.floor(random() * 12 * STREAM_ALIGN));
      if (!view) {
        refused++;
        continue;
      }
      const mark = step % 251;
      view.fill(mark);
      live.push({ view, mark });
    }
    for (const { view, mark } of live) {
      expect(view.every((byte) => byte === mark)).toBe(true);
      r.give(view);
    }
    expect(refused).toBeGreaterThan(0);
    expect(r.held).toBe(0);
  });

  it("hands out aligned stretches, and reclaims a shared one only once every part is given back", () => {
    const r = ring(64 * 1024);
    const first = r.take(100)!;
    const aligned = r.take(10_000, 4096)!;
    expect(aligned.byteOffset).toBe(4096);
    r.give(first);
    const parts = [r.share(aligned, 0, 300)!, r.share(aligned, 304, 9_000)!];
    expect(parts[1]!.byteOffset).toBe(aligned.byteOffset + 304);
    expect(r.share(new Uint8Array(10), 0, 5)).toBeUndefined();
    r.give(aligned);
    r.give(r.take(1)!); // a newer buffer given back: nothing is reclaimed while the parts are out
    r.give(parts[1]!);
    expect(r.held).toBeGreaterThanOrEqual(10_000);
    r.give(parts[0]!);
    expect(r.held).toBe(0);
    expect(r.give(parts[0]!)).toBe(false);
  });

  it("refuses buffers it did not hand out, and the same buffer twice", () => {
    const r = ring(4096);
    const view = r.take(100)!;
    expect(r.give(new Uint8Array(100))).toBe(false);
    expect(r.give(view)).toBe(true);
    expect(r.give(view)).toBe(false);
  });
});

describe("BufferPool stream buffers", () => {
  it("come from the ring while it has room, then from the size classes, and all go back", () => {
    const pool = new BufferPool(undefined, {}, 1 << 20);
    const inRing = [pool.acquireStream(600_000), pool.acquireStream(400_000)];
    expect(inRing[1]!.buffer).toBe(inRing[0]!.buffer);
    const overflow = pool.acquireStream(600_000);
    expect(overflow.buffer).not.toBe(inRing[0]!.buffer);
    for (const view of [...inRing, overflow]) pool.release(view);
    expect(pool.acquireStream(1 << 20).buffer).toBe(inRing[0]!.buffer);
  });
});

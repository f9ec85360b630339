import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadKernel } from "../kernels/index.js";
import { LibraryStore, openLibrary } from "../library/index.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import type { JobView } from "./api-schemas.js";
import { type AnalysisTools, JobQueue, type JobWork } from "./jobs.js";

let dir = "";
useTempDirWithHashCache("gyoza-jobs-", (path) => (dir = path), { each: true });
const opened: { close(): void }[] = [];
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
});

function queue(keepFinished?: number): JobQueue {
  const db = openLibrary(join(dir, "library.sqlite"));
  opened.push(db);
  return new JobQueue(new LibraryStore(db), () => loadKernel(), keepFinished);
}

/** An analysis that reports `steps` progress steps, a few ms apart, then answers. */
function steppedWork(title: string, steps: number, seen: { steps: number } = { steps: 0 }): JobWork {
  return {
    kind: "diff",
    output: `/models/${title}.safetensors`,
    title,
    run: async ({ onProgress }: AnalysisTools) => {
      onProgress({ type: "start", task: "diff", totalBytes: steps });
      for (let i = 0; i < steps; i++) {
        await new Promise((done) => setTimeout(done, 5));
        onProgress({ type: "advance", bytes: 1 });
        seen.steps++;
      }
      return {};
    },
  };
}

function finished(jobs: JobQueue, id: string): Promise<JobView> {
  return new Promise((done) => {
    const view = jobs.get(id);
    if (["done", "failed", "cancelled"].includes(view.state)) return done(view);
    jobs.subscribe(id, (event, next) => {
      if (event !== "progress") done(next);
    });
  });
}

describe("the job queue", () => {
  it("keeps only the last N finished jobs, oldest dropped first, and never drops a queued or running one", async () => {
    const jobs = queue(3);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(jobs.enqueue(steppedWork(`m${i}`, 1)).id);
    const waiting = jobs.enqueue(steppedWork("slow", 40)).id;
    await finished(jobs, ids.at(-1)!);
    const listed = jobs.list();
    expect(listed.map((job) => job.title)).toEqual(["m3", "m4", "m5", "slow"]);
    expect(listed.at(-1)!.state).not.toBe("done");
    expect(() => jobs.get(ids[0]!)).toThrow(/no job/);
    await finished(jobs, waiting);
    expect(jobs.list().map((job) => job.title)).toEqual(["m4", "m5", "slow"]);
    await jobs.close();
  });

  it("a running analysis is cancelled at its next progress report and ends cancelled, the next job then runs", async () => {
    const jobs = queue();
    const seen = { steps: 0 };
    const long = jobs.enqueue(steppedWork("long", 10_000, seen));
    const next = jobs.enqueue(steppedWork("next", 2));
    await new Promise((done) => setTimeout(done, 50));
    expect(jobs.get(long.id).state).toBe("running");
    jobs.cancel(long.id);
    const view = await finished(jobs, long.id);
    expect(view.state).toBe("cancelled");
    expect(view.error?.code).toBe("interrupted");
    const stoppedAt = seen.steps;
    expect(stoppedAt).toBeLessThan(10_000);
    expect((await finished(jobs, next.id)).state).toBe("done");
    expect(seen.steps).toBe(stoppedAt);
    await jobs.close();
  });
});

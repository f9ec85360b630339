import { randomUUID } from "node:crypto";
import { unlink } from "node:fs/promises";
import { runRecipe } from "../engine/run-recipe.js";
import { GyozaError, isGyozaError } from "../errors.js";
import type { MergeKernel } from "../kernels/merge-kernel.js";
import { addToLibrary, type LibraryStore, showEntry } from "../library/index.js";
import type { ProgressEvent, ProgressListener } from "../progress.js";
import type { Recipe } from "../recipe/index.js";
import { type JobEventName, type JobProgress, type JobView, KEPT_FINISHED_JOBS } from "./api-schemas.js";
import { errorAnswer, HttpError } from "./http-errors.js";

/** What an analysis job's work gets: the kernel, progress to report, and a way to see it was cancelled. */
export interface AnalysisTools {
  kernel: MergeKernel;
  onProgress: ProgressListener;
  signal: AbortSignal;
}

/** A merge (a loaded recipe), or an analysis whose `run` returns the view's result fields. */
export type JobWork =
  | { kind: "merge"; recipe: Recipe; baseDir: string; output: string }
  | {
      kind: "diff" | "recover" | "parents";
      output: string;
      title: string;
      run: (tools: AnalysisTools) => Promise<Pick<JobView, "diff" | "recover" | "parents">>;
    };

interface Job {
  view: JobView;
  work: JobWork;
  controller: AbortController;
  listeners: Set<(event: JobEventName, view: JobView) => void>;
  startedAt: number;
  lastEmit: number;
}

const FINAL: ReadonlySet<string> = new Set(["done", "failed", "cancelled"]);
/** Progress events are sent at most this often per job (the final one always). */
const EMIT_INTERVAL_MS = 100;

/**
 * The server's job queue: one job runs at a time (merges and analyses are disk-bound; two
 * interleaved on one disk are both slower), a second merge writing the same output while one is
 * queued or running is refused (409), progress is aggregated to {phase, bytesDone, bytesTotal,
 * etaSeconds} and sent to listeners (the SSE streams), cancel aborts the engine (which removes its
 * temp file) or the analysis (at its next progress report), and a finished merge output is added
 * to the library so it shows with its provenance. Only the last `keepFinished` finished jobs are
 * kept (default KEPT_FINISHED_JOBS); queued and running ones always are.
 */
export class JobQueue {
  private readonly jobs = new Map<string, Job>();
  private readonly waiting: Job[] = [];
  private running: Job | undefined;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: LibraryStore,
    private readonly kernel: () => Promise<MergeKernel>,
    private readonly keepFinished = KEPT_FINISHED_JOBS,
  ) {}

  /** Queues a merge of `recipe` into `output`. */
  submit(recipe: Recipe, output: string, baseDir: string): JobView {
    return this.enqueue({ kind: "merge", recipe, baseDir, output });
  }

  /** Queues any job. */
  enqueue(work: JobWork): JobView {
    const output = work.output;
    for (const job of this.jobs.values()) {
      if (
        work.kind === "merge" &&
        job.work.kind === "merge" &&
        job.view.output === output &&
        !FINAL.has(job.view.state)
      ) {
        throw new HttpError(
          409,
          "job-conflict",
          `job ${job.view.id} is already ${job.view.state} for ${output}`,
          "wait for it to finish or cancel it (DELETE /api/jobs/ID)",
        );
      }
    }
    const view: JobView = {
      id: randomUUID(),
      kind: work.kind,
      state: "queued",
      output,
      title: work.kind === "merge" ? `merge → ${output}` : work.title,
      createdAt: new Date().toISOString(),
      progress: { phase: "queued", bytesDone: 0, bytesTotal: 0, etaSeconds: null },
    };
    const job: Job = {
      view,
      work,
      controller: new AbortController(),
      listeners: new Set(),
      startedAt: 0,
      lastEmit: 0,
    };
    this.jobs.set(view.id, job);
    this.waiting.push(job);
    this.pump();
    return structuredClone(view);
  }

  list(): JobView[] {
    return [...this.jobs.values()].map((job) => structuredClone(job.view));
  }

  get(id: string): JobView {
    return structuredClone(this.job(id).view);
  }

  /** Cancels a queued job at once, a running one through its AbortSignal. */
  cancel(id: string): JobView {
    const job = this.job(id);
    if (job.view.state === "queued") {
      this.waiting.splice(this.waiting.indexOf(job), 1);
      this.finish(job, "cancelled", { code: "interrupted", message: "cancelled before it started" });
    } else if (job.view.state === "running") {
      job.controller.abort();
    }
    return structuredClone(job.view);
  }

  /** Calls `listener` with every event of the job from now on; returns the unsubscribe function. */
  subscribe(id: string, listener: (event: JobEventName, view: JobView) => void): () => void {
    const job = this.job(id);
    job.listeners.add(listener);
    return () => job.listeners.delete(listener);
  }

  /** Cancels every job and waits for the running one to stop (its temp file removed). */
  async close(): Promise<void> {
    for (const job of [...this.waiting]) this.cancel(job.view.id);
    if (this.running) this.running.controller.abort();
    await this.idle;
  }

  private job(id: string): Job {
    const job = this.jobs.get(id);
    if (!job) throw new HttpError(404, "not-found", `no job ${id}`, "GET /api/jobs lists the jobs");
    return job;
  }

  private pump(): void {
    if (this.running) return;
    const next = this.waiting.shift();
    if (!next) return;
    this.running = next;
    this.idle = this.run(next).finally(() => {
      this.running = undefined;
      this.pump();
    });
  }

  private async run(job: Job): Promise<void> {
    job.startedAt = Date.now();
    job.view.state = "running";
    job.view.progress = { phase: "planning", bytesDone: 0, bytesTotal: 0, etaSeconds: null };
    this.emit(job, "progress", true);
    if (job.work.kind !== "merge") return this.runAnalysis(job, job.work);
    // Set once the engine has renamed its output into place: only then is there a file of ours to remove.
    let written: string | undefined;
    try {
      const result = await runRecipe(job.work.recipe, {
        baseDir: job.work.baseDir,
        kernel: await this.kernel(),
        signal: job.controller.signal,
        onProgress: (event) => this.progress(job, event),
      });
      written = result.output;
      job.view.progress = { ...job.view.progress, phase: "library", etaSeconds: 0 };
      this.emit(job, "progress", true);
      if (job.controller.signal.aborted) throw new HttpError(409, "interrupted", "cancelled");
      await addToLibrary(this.store, [result.output], { cacheDir: false });
      const entry = showEntry(this.store, result.output);
      job.view.result = {
        output: result.output,
        hashes: { ...(entry.hashes ?? {}) },
        libraryFileId: entry.id,
        seconds: (Date.now() - job.startedAt) / 1000,
      };
      job.view.progress = {
        phase: "done",
        bytesDone: job.view.progress.bytesTotal,
        bytesTotal: job.view.progress.bytesTotal,
        etaSeconds: 0,
      };
      this.finish(job, "done");
    } catch (error) {
      const cancelled =
        job.controller.signal.aborted ||
        isGyozaError(error, "interrupted") ||
        (error as HttpError).code === "interrupted";
      // Cancelled inside the engine: it removed its temp file and never touched the output (a file
      // being replaced stays as it was). Cancelled after the rename: the new output goes again.
      if (cancelled && written !== undefined && job.view.result === undefined)
        await unlink(written).catch(() => {});
      this.finish(job, cancelled ? "cancelled" : "failed", errorAnswer(error).body.error);
    }
  }

  private async runAnalysis(job: Job, work: Extract<JobWork, { run: unknown }>): Promise<void> {
    const signal = job.controller.signal;
    const stopped = () => new GyozaError("interrupted", "cancelled");
    try {
      const fields = await work.run({
        kernel: await this.kernel(),
        signal,
        onProgress: (event) => {
          // the analyses take no signal: a cancelled one stops at its next progress report
          if (signal.aborted) throw stopped();
          this.progress(job, event);
        },
      });
      if (signal.aborted) throw stopped();
      Object.assign(job.view, fields);
      job.view.progress = {
        phase: "done",
        bytesDone: job.view.progress.bytesTotal,
        bytesTotal: job.view.progress.bytesTotal,
        etaSeconds: 0,
      };
      this.finish(job, "done");
    } catch (error) {
      const cancelled = signal.aborted || isGyozaError(error, "interrupted");
      this.finish(job, cancelled ? "cancelled" : "failed", errorAnswer(error).body.error);
    }
  }

  private progress(job: Job, event: ProgressEvent): void {
    const progress: JobProgress = job.view.progress;
    if (event.type === "start") {
      progress.phase = event.task;
      progress.bytesTotal = event.totalBytes;
      progress.bytesDone = 0;
      job.startedAt = Date.now();
    } else if (event.type === "advance") {
      progress.bytesDone += event.bytes;
    }
    const seconds = (Date.now() - job.startedAt) / 1000;
    progress.etaSeconds =
      progress.bytesDone > 0 && seconds > 0.2
        ? Math.max(0, ((progress.bytesTotal - progress.bytesDone) * seconds) / progress.bytesDone)
        : null;
    this.emit(job, "progress", event.type !== "advance");
  }

  private finish(job: Job, state: "done" | "failed" | "cancelled", error?: JobView["error"]): void {
    job.view.state = state;
    if (error) job.view.error = error;
    this.emit(job, state, true);
    job.listeners.clear();
    this.trim();
  }

  /** Drops the oldest finished jobs beyond `keepFinished` (the map keeps jobs in submission order). */
  private trim(): void {
    const finished = [...this.jobs.values()].filter((job) => FINAL.has(job.view.state));
    for (const job of finished.slice(0, Math.max(0, finished.length - this.keepFinished)))
      this.jobs.delete(job.view.id);
  }

  private emit(job: Job, event: JobEventName, force: boolean): void {
    const now = Date.now();
    if (!force && now - job.lastEmit < EMIT_INTERVAL_MS) return;
    job.lastEmit = now;
    const view = structuredClone(job.view);
    for (const listener of job.listeners) listener(event, view);
  }
}

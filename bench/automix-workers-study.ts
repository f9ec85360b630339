/**
 * The throughput bench's study mode (the default): real `study` jobs through the path
 * `gyoza automix run STUDY --redis` takes. Each worker is a `gyoza worker --backend comfy` process
 * (the command itself, through tsx) on a "GPU host" of its own: hard links of the study's tiny
 * synthetic inputs, a ComfyUI stand-in that takes a fixed time per image, a gyoza.yaml naming it.
 * A worker verifies its inputs, merges the candidate, stages it in its ComfyUI's model folder,
 * renders the images there and scores them (a weights scorer against model b, the stand-in
 * brightness scorer over HTTP). The coordinator plans the study file (planDistributedStudy) and
 * runs it (runDistributedStudy with each candidate's recipe and the library mirror), as
 * src/cli/commands/automix-distributed.ts does.
 *
 * Only the ComfyUI stand-ins' waits are free: merging, hashing, PNG rendering, scoring and the queue
 * all take CPU, and with N workers on a 2-core VM they share two cores.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { copyFile, link, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runDistributedStudy } from "../src/automix/distributed/coordinator.js";
import { StudyLog } from "../src/automix/distributed/study-log.js";
import { planDistributedStudy } from "../src/automix/distributed/study-settings.js";
import { SearchSpace } from "../src/automix/search-space.js";
import { readStudyFile } from "../src/automix/study-file.js";
import { loadRecipe } from "../src/recipe/index.js";
import type { SyntheticOptions } from "../src/synth/synthetic-model.js";
import { writeSyntheticCheckpoint } from "../src/synth/write-synthetic.js";
import { type ComfyStandin, startComfyStandin } from "../src/test-support/comfyui-standin.js";
import { REPO_ROOT } from "./bench-support.js";

const EXAMPLES = join(REPO_ROOT, "src/automix/examples");
const CLI = join(REPO_ROOT, "src/cli/main.ts");
const INPUTS = ["a.safetensors", "b.safetensors"] as const;
/** Linux's USER_HZ: /proc/PID/stat counts CPU time in these. */
const CLOCK_TICKS = 100;

export interface StudyBenchOptions {
  readonly redisUrl: string;
  /** An empty folder of the bench's own. */
  readonly dir: string;
  /** The ComfyUI stand-ins' time per image. */
  readonly imageMs: number;
  /** Images per trial (one prompt, seeds 1…images). */
  readonly images: number;
  /** The synthetic inputs' size. */
  readonly size: SyntheticOptions["size"];
  /** A line of progress (stderr). */
  readonly log: (line: string) => void;
}

/** Means over a run's trials, in seconds, of what each worker measured (evaluateCandidate's timings). */
export interface TrialMeans {
  /** Merge, hash and stage in the backend's model folder. */
  readonly merge: number;
  readonly generate: number;
  readonly score: number;
  /** The three and what lies between them. */
  readonly total: number;
}

export interface StudyRun {
  readonly seconds: number;
  readonly failed: number;
  readonly means: TrialMeans;
  /** CPU seconds of the worker processes during the run. */
  readonly workerCpu: number;
  /** CPU seconds of this process (coordinator, ComfyUI stand-ins) during the run. */
  readonly benchCpu: number;
}

export interface StudyBench {
  /**
   * Starts `workers` worker processes (hosts made as needed), runs a warm-up study of `workers`
   * trials (each worker builds its scorers and hashes its inputs once, as at a long study's start),
   * then times a study of `trials`; stops the workers.
   */
  run(workers: number, trials: number, onTrial: (done: number) => void): Promise<StudyRun>;
  close(): Promise<void>;
}

interface Host {
  readonly inputs: string;
  readonly work: string;
  readonly config: string;
  readonly comfy: ComfyStandin;
}

interface WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

export async function prepareStudyBench(options: StudyBenchOptions): Promise<StudyBench> {
  const { dir } = options;
  const source = join(dir, "study");
  const cache = join(dir, "cache");
  const library = join(dir, "library.db");
  await mkdir(source, { recursive: true });
  for (const [i, name] of INPUTS.entries())
    await writeSyntheticCheckpoint(join(source, name), {
      layout: "sd1-ldm",
      size: options.size,
      dtype: "F16",
      seed: i + 1,
    });
  const recipe = (await readFile(join(EXAMPLES, "demo-recipe.yaml"), "utf8")).replaceAll(
    "../../../demo-out/automix/",
    "",
  );
  await writeFile(join(source, "recipe.yaml"), recipe);
  await copyFile(join(EXAMPLES, "demo-space.yaml"), join(source, "space.yaml"));

  const hosts: Host[] = [];
  const host = async (i: number): Promise<Host> => {
    const root = join(dir, `host-${i}`);
    const inputs = join(root, "inputs");
    const models = join(root, "models");
    await mkdir(inputs, { recursive: true });
    await mkdir(models, { recursive: true });
    for (const name of INPUTS)
      await link(join(source, name), join(inputs, name)).catch(() =>
        copyFile(join(source, name), join(inputs, name)),
      );
    const comfy = await startComfyStandin({
      modelFolder: models,
      stepDelayMs: 0,
      imageDelayMs: options.imageMs,
    });
    const config = join(root, "gyoza.yaml");
    await writeFile(
      config,
      `backends:\n  comfy:\n    kind: comfyui\n    url: ${comfy.url}\n    model_folder: ${models}\n    timeout_seconds: 120\n`,
    );
    return { inputs, work: join(root, "work"), config, comfy };
  };

  /** `gyoza worker --backend comfy --config HOST/gyoza.yaml --inputs HOST/inputs …`, resolved once it takes jobs. */
  const startWorker = async (on: Host, name: string): Promise<WorkerProcess> => {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        CLI,
        "worker",
        ...["--backend", "comfy", "--config", on.config, "--redis", options.redisUrl],
        ...["--inputs", on.inputs, "--work", on.work, "--name", name],
      ],
      {
        cwd: REPO_ROOT,
        stdio: ["ignore", "ignore", "pipe"],
        env: { ...process.env, GYOZA_CACHE_DIR: cache },
      },
    );
    let tail = "";
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    await new Promise<void>((resolve, reject) => {
      child.stderr?.on("data", (chunk: Buffer) => {
        tail = (tail + chunk.toString()).slice(-4000);
        if (/taking jobs/.test(tail)) resolve();
      });
      void exited.then(() => reject(new Error(`gyoza worker ${name} exited (${child.exitCode}):\n${tail}`)));
    });
    return { child, exited };
  };

  const stopWorkers = async (workers: readonly WorkerProcess[]): Promise<void> => {
    for (const worker of workers) worker.child.kill("SIGTERM");
    await Promise.all(
      workers.map(async (worker) => {
        const timer = setTimeout(() => worker.child.kill("SIGKILL"), 10_000);
        await worker.exited;
        clearTimeout(timer);
      }),
    );
  };

  /** A study file like the automix demo's, scored through images, run as gyoza automix run --redis does. */
  const runStudy = async (
    name: string,
    budget: number,
    inFlight: number,
    onTrial: (done: number, timings: Record<string, number> | undefined, failed: boolean) => void,
  ): Promise<{ seconds: number; failed: number }> => {
    const file = join(source, `${name}.yaml`);
    const seeds = Array.from({ length: options.images }, (_, i) => i + 1);
    await writeFile(
      file,
      `automix-study: 1
name: ${name}
recipe: recipe.yaml
space: space.yaml
optimizer: random
seed: 3
budget: ${budget}
images:
  backend: comfy
  prompts: ["a bowl of gyoza"]
  seeds: [${seeds.join(", ")}]
  steps: 2
  width: 64
  height: 64
scorers:
  - { name: like-b, type: weights, target: b.safetensors }
  - { name: brightness, type: http, url: stand-in, weight: 0.05 }
`,
    );
    const study = await readStudyFile(file);
    const recipeText = await readFile(study.recipeFile, "utf8");
    const spaceText = await readFile(study.spaceFile, "utf8");
    const space = SearchSpace.parse(spaceText, study.spaceFile);
    const base = loadRecipe(recipeText, { sourceName: study.recipeFile });
    const plan = await planDistributedStudy(study, base, {
      dimensions: space.dimensions,
      inFlight,
      hashCacheDir: cache,
    });
    const log = join(dir, "logs", `${name}.sqlite`);
    await mkdir(join(dir, "logs"), { recursive: true });
    let done = 0;
    const started = performance.now();
    const summary = await runDistributedStudy({
      redisUrl: options.redisUrl,
      logPath: log,
      study: name,
      settings: plan.settings,
      candidateRecipe: (x) => space.toRecipe(x, plan.base),
      library: {
        path: library,
        spaceYaml: spaceText,
        baseRecipe: recipeText,
        settings: { log, recipeFile: study.recipeFile, spaceFile: study.spaceFile, scorers: study.scorers },
      },
      log: (line) => options.log(`coordinator: ${line}`),
      onTrial: (_trial, score, _worker, detail) => onTrial(++done, detail?.timings, !Number.isFinite(score)),
    });
    const seconds = (performance.now() - started) / 1000;
    if (summary.failed > 0) {
      // say why: a failed trial is a finding, not noise to average over
      const studyLog = new StudyLog(log);
      try {
        for (const row of studyLog.trials(name).filter((trial) => trial.state === "failed"))
          options.log(`${name}: trial ${row.number} failed on ${row.worker ?? "?"}: ${row.error}`);
      } finally {
        studyLog.close();
      }
    }
    return { seconds, failed: summary.failed };
  };

  let runs = 0;
  return {
    async run(n, trials, onTrial) {
      // a study name of its own per run: the same N twice (--workers 8,8) must not resume the first
      const id = `bench-r${++runs}-n${n}`;
      while (hosts.length < n) hosts.push(await host(hosts.length));
      options.log(`N = ${n}: starting ${n} gyoza worker process${n === 1 ? "" : "es"}`);
      const workers: WorkerProcess[] = [];
      try {
        for (let i = 0; i < n; i++) workers.push(await startWorker(hosts[i] as Host, `n${n}-w${i}`));
        const warm = await runStudy(`${id}-warm-up`, n, n, () => {});
        if (warm.failed > 0) throw new Error(`the warm-up study failed ${warm.failed} of its ${n} trials`);
        const timings: Record<string, number>[] = [];
        const workerCpu = () => workers.reduce((sum, worker) => sum + cpuSeconds(worker.child.pid), 0);
        const cpuBefore = workerCpu();
        const benchBefore = process.cpuUsage();
        const { seconds, failed } = await runStudy(id, trials, n, (done, trial) => {
          if (trial) timings.push(trial);
          onTrial(done);
        });
        const bench = process.cpuUsage(benchBefore);
        const mean = (key: string) =>
          timings.reduce((sum, trial) => sum + (trial[key] ?? 0), 0) / Math.max(1, timings.length);
        return {
          seconds,
          failed,
          means: {
            merge: mean("merge"),
            generate: mean("generate"),
            score: mean("score"),
            total: mean("total"),
          },
          workerCpu: workerCpu() - cpuBefore,
          benchCpu: (bench.user + bench.system) / 1e6,
        };
      } finally {
        await stopWorkers(workers);
      }
    },
    async close() {
      await Promise.all(hosts.map((on) => on.comfy.close()));
    },
  };
}

/** A process's CPU time so far (user + system), from /proc; NaN where there is none (not Linux). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // after "pid (comm) ": state is field 3, utime 14, stime 15
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

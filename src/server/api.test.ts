import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildDemoLibrary, type DemoLibrary } from "../demo/build-demo-library.js";
import { readMetadataOf, stripMetadata } from "../image/carry-metadata.js";
import { textsByKey } from "../image/metadata-types.js";
import type {
  CopyMetadataResponse,
  HealthResponse,
  ImageInspectResponse,
  JobView,
  LibraryEntry,
  ModelView,
} from "./api-schemas.js";
import { createServer, type GyozaServer } from "./create-server.js";

let dir: string;
let demo: DemoLibrary;
let server: GyozaServer;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gyoza-serve-"));
  demo = await buildDemoLibrary(dir, { size: "micro", imagesPerVersion: 1, imageSize: [64, 64] });
  server = await createServer({ library: demo.libraryPath, roots: [dir] });
  const url = await server.listen();
  base = new URL(url).origin;
}, 60_000);

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}${path}`, {
    ...init,
    headers: {
      Authorization: `Bearer ${server.token}`,
      ...(init.body ? { "Content-Type": "application/json" } : {}),
      ...init.headers,
    },
  });
}

async function json<T>(path: string, init: RequestInit = {}): Promise<T> {
  const response = await api(path, init);
  expect(response.status, await response.clone().text()).toBeLessThan(300);
  return (await response.json()) as T;
}

/** The GyozaMix recipe of the demo, writing `output` (relative to the demo folder). */
function recipeYaml(output: string, alpha = "COSINE"): string {
  const text = readFileSync(new URL("../recipe/examples/gyozamix.yaml", import.meta.url), "utf8");
  return text
    .replace("path: out/gyozamix-fp16.safetensors", `path: ${output}`)
    .replace("alpha: COSINE", `alpha: ${alpha}`);
}

/** Reads a job's Server-Sent Events to the end. */
async function readEvents(id: string): Promise<{ event: string; view: JobView }[]> {
  const response = await api(`/api/jobs/${id}/events`);
  expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const text = await response.text();
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("event: "))
    .map((block) => {
      const [eventLine, dataLine] = block.split("\n");
      return {
        event: eventLine!.slice("event: ".length),
        view: JSON.parse(dataLine!.slice("data: ".length)) as JobView,
      };
    });
}

describe("library routes", () => {
  it("health names the library and the allowed folders", async () => {
    const health = await json<HealthResponse>("/api/health");
    expect(health.library).toBe(demo.libraryPath);
    expect(health.roots).toContain(dir);
    expect(health.roots).toContain(join(dir, "out"));
    expect(health.baseDir).toBe(dir);
  });

  it("lists the demo's model, shows its page and finds its files", async () => {
    const models = await json<{ name: string }[]>("/api/library/models");
    expect(models.map((model) => model.name)).toContain("GyozaMix");
    const page = await json<ModelView>(`/api/library/models/${encodeURIComponent("GyozaMix@v2")}`);
    expect(page.model.name).toBe("GyozaMix");
    const files = await json<LibraryEntry[]>("/api/library/files");
    expect(files.map((file) => file.path)).toEqual(demo.versions.flatMap((version) => version.files).sort());
    const found = await json<LibraryEntry[]>("/api/library/files?name=fp32");
    expect(found.map((file) => file.name)).toEqual(["gyozamix-v2-fp32-full.safetensors"]);
    const missing = await api(`/api/library/models/${encodeURIComponent("NoSuchModel")}`);
    expect(missing.status).toBe(404);
    expect((await api(`/api/library/models/${encodeURIComponent("GyozaMix@v9")}`)).status).toBe(404);
  });

  it("serves a library image and its thumbnail, and 404s an id not in the library", async () => {
    const page = await json<ModelView>(`/api/library/models/GyozaMix`);
    const image = page.versions.flatMap((version) => version.images)[0]!;
    const original = await api(`/api/library/images/${image.id}/original`);
    expect(original.headers.get("content-type")).toBe("image/png");
    expect(
      Buffer.from(await original.arrayBuffer())
        .subarray(1, 4)
        .toString(),
    ).toBe("PNG");
    const thumbnail = await api(`/api/library/images/${image.id}/thumbnail`);
    expect(thumbnail.headers.get("content-type")).toBe("image/webp");
    expect((await api("/api/library/images/99999/original")).status).toBe(404);
  });

  it("gives presets as 26 values and the SD 1.5 slot names", async () => {
    const presets = await json<{ name: string; weights: number[] }[]>("/api/presets?family=sd1");
    const cosine = presets.find((preset) => preset.name === "COSINE")!;
    expect(cosine.weights).toHaveLength(26);
    const layout = await json<{ slots: string[] }>("/api/layouts/sd1");
    expect(layout.slots[0]).toBe("BASE");
    expect(layout.slots).toHaveLength(26);
    expect((await api("/api/layouts/sd9")).status).toBe(400);
  });

  it("documents the API as OpenAPI generated from the schemas", async () => {
    const doc = await json<{
      openapi: string;
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    }>("/api/openapi.json");
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.paths["/api/weights/parse"]!.post!.requestBody).toBeDefined();
  });
});

describe("weights and plans", () => {
  it("parses 26 values and a preset name, and refuses a trailing comma with a fix", async () => {
    const values = Array.from({ length: 26 }, (_, i) => (i / 25).toFixed(2)).join(",");
    expect(
      (
        await json<{ weights: number[] }>("/api/weights/parse", {
          method: "POST",
          body: JSON.stringify({ text: values }),
        })
      ).weights,
    ).toHaveLength(26);
    const preset = await json<{ weights: number[]; preset: string }>("/api/weights/parse", {
      method: "POST",
      body: JSON.stringify({ text: "grad_v", family: "sd1" }),
    });
    expect(preset.preset).toBe("GRAD_V");
    const response = await api("/api/weights/parse", {
      method: "POST",
      body: JSON.stringify({ text: `${values},` }),
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { code: string; message: string; fix?: string } };
    expect(body.error.code).toBe("usage");
    expect(body.error.message).toMatch(/empty/i);
    expect(body.error.fix).toBeTruthy();
  });

  it("plans the GyozaMix recipe and gives the --plan text; a bad recipe is a 400 with its path", async () => {
    const plan = await json<{ planText: string; plan: { keyCount: number; family: string } }>(
      "/api/recipes/plan",
      {
        method: "POST",
        body: JSON.stringify({ yaml: recipeYaml("out/planned.safetensors") }),
      },
    );
    expect(plan.plan.family).toBe("sd1");
    expect(plan.plan.keyCount).toBeGreaterThan(100);
    expect(plan.planText).toMatch(/COSINE|weighted_sum/);
    const bad = await api("/api/recipes/plan", {
      method: "POST",
      body: JSON.stringify({ yaml: recipeYaml("out/planned.safetensors", "NOT_A_PRESET") }),
    });
    expect(bad.status).toBe(400);
    const body = (await bad.json()) as { error: { code: string; path?: string; message: string } };
    expect(`${body.error.path} ${body.error.message}`).toMatch(/final|alpha|NOT_A_PRESET/);
  });
});

describe("merge jobs", () => {
  it("runs a merge to done with progress events over SSE and adds the result to the library with its AutoV3", async () => {
    const { id } = await json<{ id: string }>("/api/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "merge", yaml: recipeYaml("out/served.safetensors", "0.3") }),
    });
    const events = await readEvents(id);
    const last = events.at(-1)!;
    expect(last.event, JSON.stringify(last.view.error)).toBe("done");
    expect(events.some((event) => event.event === "progress" && event.view.state === "running")).toBe(true);
    expect(last.view.progress.bytesDone).toBe(last.view.progress.bytesTotal);
    expect(last.view.progress.bytesTotal).toBeGreaterThan(0);
    const result = last.view.result!;
    expect(result.output).toBe(join(dir, "out/served.safetensors"));
    const [entry] = await json<LibraryEntry[]>(`/api/library/files?hash=${result.hashes.AutoV3}`);
    expect(entry!.id).toBe(result.libraryFileId);
    expect(entry!.path).toBe(result.output);
    expect(entry!.provenance?.recipeFormat).toBe("gyoza");
    expect((await json<JobView>(`/api/jobs/${id}`)).state).toBe("done");
    expect((await json<JobView[]>("/api/jobs")).map((job) => job.id)).toContain(id);
  });

  it("refuses a second job for the same output with 409, and a cancelled job leaves no file", async () => {
    const yaml = recipeYaml("out/cancelled.safetensors", "GRAD_V");
    const { id } = await json<{ id: string }>("/api/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "merge", yaml }),
    });
    const second = await api("/api/jobs", { method: "POST", body: JSON.stringify({ kind: "merge", yaml }) });
    expect(second.status).toBe(409);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe("job-conflict");
    const cancelled = await json<JobView>(`/api/jobs/${id}`, { method: "DELETE" });
    expect(["running", "cancelled"]).toContain(cancelled.state);
    const events = await readEvents(id);
    expect(events.at(-1)!.event).toBe("cancelled");
    expect(existsSync(join(dir, "out/cancelled.safetensors"))).toBe(false);
    expect(readdirTemp(join(dir, "out"))).toEqual([]);
  });

  it("refuses to replace an existing file unless the request says replace", async () => {
    const existing = "out/gyozamix-v1-fp16.safetensors";
    const before = readFileSync(join(dir, existing));
    const refused = await api("/api/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "merge", yaml: recipeYaml(existing, "0.7") }),
    });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("output-exists");
    expect(readFileSync(join(dir, existing)).equals(before)).toBe(true);
    for (const [alpha, replace] of [
      ["0.7", false],
      ["0.2", true],
    ] as const) {
      const { id } = await json<{ id: string }>("/api/jobs", {
        method: "POST",
        body: JSON.stringify({ kind: "merge", yaml: recipeYaml("out/replaced.safetensors", alpha), replace }),
      });
      expect((await readEvents(id)).at(-1)!.event).toBe("done");
    }
  });

  it("cancels a queued job before it starts", async () => {
    const first = await json<{ id: string }>("/api/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "merge", yaml: recipeYaml("out/queued-1.safetensors") }),
    });
    const second = await json<{ id: string }>("/api/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "merge", yaml: recipeYaml("out/queued-2.safetensors") }),
    });
    expect((await json<JobView>(`/api/jobs/${second.id}`)).state).toBe("queued");
    expect((await json<JobView>(`/api/jobs/${second.id}`, { method: "DELETE" })).state).toBe("cancelled");
    expect((await readEvents(first.id)).at(-1)!.event).toBe("done");
    expect(existsSync(join(dir, "out/queued-2.safetensors"))).toBe(false);
  });
});

describe("analyse and images", () => {
  it("diffs two library files per block as a queued job with progress over SSE", async () => {
    const files = await json<LibraryEntry[]>("/api/library/files?name=gyozamix-v");
    const [a, b] = files;
    const { id } = await json<{ id: string }>("/api/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "diff", a: a!.id, b: b!.path }),
    });
    const events = await readEvents(id);
    expect(events.at(-1)!.event, JSON.stringify(events.at(-1)!.view.error)).toBe("done");
    expect(events.some((event) => event.view.progress.phase === "diff")).toBe(true);
    const diff = (await json<JobView>(`/api/jobs/${id}`)).diff!;
    expect(diff.blocks).toHaveLength(26);
    expect(diff.blocks[0]!.name).toBe("BASE");
  });

  it("recovers block weights from parents as a job and gives a recipe; find-parents ranks the true parents first", async () => {
    const merged = join(dir, "out/recovered-source.safetensors");
    const yaml = [
      "gyoza: 1",
      "inputs:",
      "  a: { path: models/anime-detail.safetensors }",
      "  b: { path: models/composition.safetensors }",
      "steps:",
      "  m: { method: weighted_sum, inputs: { a: a, b: b }, alpha: GRAD_V }",
      `output: { path: ${merged}, dtype: fp32 }`,
    ].join("\n");
    const { id } = await json<{ id: string }>("/api/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "merge", yaml }),
    });
    expect((await readEvents(id)).at(-1)!.event).toBe("done");
    const job = await json<{ id: string }>("/api/jobs", {
      method: "POST",
      body: JSON.stringify({
        kind: "recover",
        merged,
        parents: ["models/anime-detail.safetensors", "models/composition.safetensors"],
      }),
    });
    expect((await readEvents(job.id)).at(-1)!.event).toBe("done");
    const recovered = (await json<JobView>(`/api/jobs/${job.id}`)).recover!;
    const gradV = (await json<{ name: string; weights: number[] }[]>("/api/presets?family=sd1")).find(
      (preset) => preset.name === "GRAD_V",
    )!;
    for (const [i, weight] of recovered.weights.entries()) {
      if (i > 0) expect(weight).toBeCloseTo(gradV.weights[i]!, 2);
    }
    expect(recovered.recipeYaml).toMatch(/^gyoza: 1/m);
    // find parents among the source models and a library merge of them (a copy of the merged file is no parent)
    const candidates = [
      "models/anime-detail.safetensors",
      "models/composition.safetensors",
      "models/texture-tuned.safetensors",
      "out/gyozamix-v1-fp16.safetensors",
      merged,
    ];
    const ranked = await json<{ id: string }>("/api/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "parents", merged, candidates }),
    });
    const events = await readEvents(ranked.id);
    expect(events.at(-1)!.event, JSON.stringify(events.at(-1)!.view.error)).toBe("done");
    const parents = events.at(-1)!.view.parents!;
    const best = parents.pairs[0]!;
    expect([best.a, best.b].map((path) => path.split("/").at(-1)).sort()).toEqual([
      "anime-detail.safetensors",
      "composition.safetensors",
    ]);
    expect(best.explained).toBe(true);
    expect(best.nearestPreset?.name).toBe("GRAD_V");
    expect(best.weights).toHaveLength(26);
    expect(best.recipeYaml).toMatch(/^gyoza: 1/m);
    expect(parents.candidates.map((candidate) => candidate.path)).not.toContain(merged);
    const lone = await api("/api/jobs", {
      method: "POST",
      body: JSON.stringify({ kind: "parents", merged, candidates: [merged, merged] }),
    });
    expect(lone.status).toBe(400);
  });

  it("inspects a dropped image: generation data and the library version it came from", async () => {
    const image = readFileSync(demo.versions.find((version) => version.name === "v1")!.images[0]!);
    const response = await api("/api/images/inspect", {
      method: "POST",
      body: image,
      headers: { "Content-Type": "image/png" },
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as {
      generation: { generator: string } | null;
      metadataTexts: Record<string, string>;
      matches: { model: string | null; version: string | null; file: LibraryEntry }[];
    };
    expect(body.metadataTexts.parameters).toBeTruthy();
    expect(body.generation?.generator).toBeTruthy();
    expect(body.matches.map((match) => [match.model, match.version])).toContainEqual(["GyozaMix", "v1"]);
  });
});

describe("copying metadata between images", () => {
  const v1Image = () => demo.versions.find((version) => version.name === "v1")!.images[0]!;
  const copy = (body: unknown) =>
    api("/api/images/copy-metadata", { method: "POST", body: JSON.stringify(body) });

  /** A copy of a demo image with no metadata (pixels the same), written into the demo folder. */
  async function bareTarget(name: string): Promise<string> {
    const path = join(dir, name);
    const stripped = await stripMetadata({ bytes: readFileSync(v1Image()), name: v1Image() });
    writeFileSync(path, stripped.bytes);
    return path;
  }

  it("returns the target with the source's generation data, writing nothing and leaving both inputs as they were", async () => {
    const target = await bareTarget("bare-1.png");
    const before = readFileSync(target);
    const source = readFileSync(v1Image());
    const response = await json<CopyMetadataResponse>("/api/images/copy-metadata", {
      method: "POST",
      body: JSON.stringify({
        source: { name: "source.png", base64: source.toString("base64") },
        target: { path: "bare-1.png" },
      }),
    });
    expect(response.output).toBeNull();
    expect(response.container).toBe("png");
    expect(response.carried).toContain("parameters");
    const written = Buffer.from(response.base64!, "base64");
    const inspected = await json<ImageInspectResponse>("/api/images/inspect", {
      method: "POST",
      body: written,
      headers: { "Content-Type": "image/png" },
    });
    const original = textsByKey((await readMetadataOf({ bytes: source, name: "source" })).texts);
    expect(inspected.metadataTexts.parameters).toBe(original.parameters);
    expect(inspected.matches.map((match) => [match.model, match.version])).toContainEqual(["GyozaMix", "v1"]);
    expect(readFileSync(target).equals(before)).toBe(true);
    expect(readFileSync(v1Image()).equals(source)).toBe(true);
  });

  it("writes to an output path inside the roots atomically, and refuses to replace it without replace", async () => {
    await bareTarget("bare-2.png");
    const body = { source: { path: v1Image() }, target: { path: "bare-2.png" }, output: "out/with-meta.png" };
    const written = await json<CopyMetadataResponse>("/api/images/copy-metadata", {
      method: "POST",
      body: JSON.stringify(body),
    });
    expect(written.output).toBe(join(dir, "out/with-meta.png"));
    expect(written.base64).toBeNull();
    const texts = textsByKey(
      (await readMetadataOf({ bytes: readFileSync(written.output!), name: "x" })).texts,
    );
    expect(texts.parameters).toBeTruthy();
    expect(readdirSync(join(dir, "out")).filter((name) => name.includes("gyoza-partial"))).toEqual([]);
    const again = await copy(body);
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("output-exists");
    expect((await copy({ ...body, replace: true })).status).toBe(200);
  });

  it("an output path outside the library roots or with ../ is refused and nothing is written", async () => {
    await bareTarget("bare-3.png");
    const outside = join(tmpdir(), `gyoza-escape-${process.pid}.png`);
    for (const output of [outside, "out/../../escape.png"]) {
      const response = await copy({ source: { path: v1Image() }, target: { path: "bare-3.png" }, output });
      expect(response.status).toBe(403);
    }
    expect(existsSync(outside)).toBe(false);
    expect(existsSync(join(dir, "..", "escape.png"))).toBe(false);
  });

  it("a source image without metadata, a target path outside the roots and bad base64 are refused", async () => {
    await bareTarget("bare-4.png");
    const empty = await copy({ source: { path: "bare-4.png" }, target: { path: "bare-4.png" } });
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { error: { message: string } }).error.message).toMatch(/no metadata/);
    expect((await copy({ source: { path: v1Image() }, target: { path: "/etc/passwd" } })).status).toBe(403);
    const bad = await copy({
      source: { name: "x.png", base64: "not base64!" },
      target: { path: "bare-4.png" },
    });
    expect(bad.status).toBe(400);
  });
});

function readdirTemp(folder: string): string[] {
  return readdirSync(folder).filter((name) => !name.endsWith(".safetensors"));
}

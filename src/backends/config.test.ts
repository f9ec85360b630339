import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type GyozaError, isGyozaError } from "../errors.js";
import { useTempDirWithHashCache } from "../test-support/temp-dir.js";
import { loadGyozaConfig, parseGyozaConfig, pickBackend } from "./config.js";

let dir = "";
useTempDirWithHashCache("gyoza-config-", (path) => {
  dir = path;
});

const GOOD = `
default_backend: comfy
backends:
  comfy:
    kind: comfyui
    url: http://127.0.0.1:8188/
    model_folder: /dev/shm/gyoza
  forge:
    kind: a1111
    url: http://127.0.0.1:7860
    model_folder: models
    model_prefix: gyoza/
    headers: { Authorization: Bearer x }
    timeout_seconds: 120
`;

function errorOf(run: () => unknown): GyozaError {
  try {
    run();
  } catch (error) {
    if (isGyozaError(error)) return error;
    throw error;
  }
  throw new Error("no error");
}

describe("gyoza.yaml", () => {
  it("reads backends with defaults, a trimmed URL and model_folder relative to the file", () => {
    const config = parseGyozaConfig(GOOD, "/etc/gyoza/gyoza.yaml");
    expect(config.defaultBackend).toBe("comfy");
    expect(config.backends).toEqual([
      {
        name: "comfy",
        kind: "comfyui",
        url: "http://127.0.0.1:8188",
        modelFolder: "/dev/shm/gyoza",
        modelPrefix: "",
        headers: {},
        timeoutSeconds: 600,
      },
      {
        name: "forge",
        kind: "a1111",
        url: "http://127.0.0.1:7860",
        modelFolder: "/etc/gyoza/models",
        modelPrefix: "gyoza",
        headers: { Authorization: "Bearer x" },
        timeoutSeconds: 120,
      },
    ]);
    expect(pickBackend(config).name).toBe("comfy");
    expect(pickBackend(config, "forge").name).toBe("forge");
  });

  it("a misspelt key is named with its path and a suggestion", () => {
    const error = errorOf(() => parseGyozaConfig(GOOD.replace("model_prefix", "model_prefx"), "g.yaml"));
    expect(error.describe()).toContain(
      "g.yaml: backends.forge.model_prefx: unknown key 'model_prefx' (did you mean 'model_prefix'?)",
    );
  });

  it("an unknown kind lists the kinds", () => {
    const error = errorOf(() => parseGyozaConfig(GOOD.replace("kind: a1111", "kind: invoke"), "g.yaml"));
    expect(error.path).toBe("backends.forge.kind");
    expect(error.message).toMatch(/comfyui.*a1111/);
  });

  it("a URL that is not http is refused at its key", () => {
    const error = errorOf(() =>
      parseGyozaConfig(GOOD.replace("http://127.0.0.1:7860", "127.0.0.1:7860"), "g.yaml"),
    );
    expect(error.path).toBe("backends.forge.url");
    expect(error.message).toContain("http:// or https://");
  });

  it("a missing model_folder is named as required", () => {
    const error = errorOf(() =>
      parseGyozaConfig(GOOD.replace("    model_folder: /dev/shm/gyoza\n", ""), "g.yaml"),
    );
    expect(error.path).toBe("backends.comfy.model_folder");
    expect(error.message).toBe("this key is required");
  });

  it("a default_backend that is not configured is refused", () => {
    const error = errorOf(() =>
      parseGyozaConfig(GOOD.replace("default_backend: comfy", "default_backend: nope"), "g.yaml"),
    );
    expect(error.path).toBe("default_backend");
  });

  it("YAML that does not parse names the file", () => {
    const error = errorOf(() => parseGyozaConfig("backends: [", "g.yaml"));
    expect(error.file).toBe("g.yaml");
    expect(error.message).toContain("not valid YAML");
  });

  it("an unknown backend name suggests the near one", () => {
    const config = parseGyozaConfig(GOOD, "g.yaml");
    expect(errorOf(() => pickBackend(config, "forg")).message).toContain("did you mean 'forge'?");
  });

  it("is found by --config, then $GYOZA_CONFIG, then ./gyoza.yaml, then $XDG_CONFIG_HOME/gyoza/gyoza.yaml", async () => {
    const write = async (path: string, name: string) => {
      await mkdir(join(path, ".."), { recursive: true });
      await writeFile(
        path,
        GOOD.replace("comfy:", `${name}:`).replace("default_backend: comfy", `default_backend: ${name}`),
      );
    };
    const cwd = join(dir, "cwd");
    const xdg = join(dir, "xdg");
    await write(join(xdg, "gyoza", "gyoza.yaml"), "fromxdg");
    const env = { XDG_CONFIG_HOME: xdg } as NodeJS.ProcessEnv;
    await mkdir(cwd, { recursive: true });
    expect((await loadGyozaConfig({ cwd, env })).defaultBackend).toBe("fromxdg");
    await write(join(cwd, "gyoza.yaml"), "fromcwd");
    expect((await loadGyozaConfig({ cwd, env })).defaultBackend).toBe("fromcwd");
    await write(join(dir, "env.yaml"), "fromenv");
    expect(
      (await loadGyozaConfig({ cwd, env: { ...env, GYOZA_CONFIG: join(dir, "env.yaml") } })).defaultBackend,
    ).toBe("fromenv");
    await write(join(dir, "flag.yaml"), "fromflag");
    expect(
      (
        await loadGyozaConfig({
          cwd,
          env: { ...env, GYOZA_CONFIG: join(dir, "env.yaml") },
          path: join(dir, "flag.yaml"),
        })
      ).defaultBackend,
    ).toBe("fromflag");
  });

  it("no config anywhere is a usage error pointing at the example", async () => {
    const error = await loadGyozaConfig({
      cwd: join(dir, "empty"),
      env: { XDG_CONFIG_HOME: join(dir, "none") },
    }).catch((e: unknown) => e);
    expect(isGyozaError(error, "usage")).toBe(true);
    expect((error as GyozaError).fix).toContain("gyoza.example.yaml");
  });
});

describe("gyoza.example.yaml", () => {
  it("parses, so copying it is a working start", async () => {
    const path = new URL("../../gyoza.example.yaml", import.meta.url).pathname;
    const config = await loadGyozaConfig({ path });
    expect(config.backends.map((backend) => [backend.name, backend.kind])).toEqual([
      ["comfy", "comfyui"],
      ["forge", "a1111"],
    ]);
    expect(config.backends[1]!.modelFolder.startsWith("~")).toBe(false);
  });
});

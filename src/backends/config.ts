import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { didYouMean, GyozaError } from "../errors.js";
import * as z from "../zod.js";
import type { BackendConfig } from "./types.js";

/**
 * `gyoza.yaml`: the generation backends a user has (ComfyUI, A1111/Forge) and where gyoza writes
 * candidate merges so each one sees them. Found, first match wins: `--config PATH`,
 * `$GYOZA_CONFIG`, `./gyoza.yaml`, `$XDG_CONFIG_HOME/gyoza/gyoza.yaml` (else `~/.config/gyoza/gyoza.yaml`).
 */
export interface GyozaConfig {
  /** The file it was read from. */
  file: string;
  backends: BackendConfig[];
  defaultBackend: string | undefined;
}

/** Default longest wait for one image (seconds): a slow card at 1024² with many steps. */
export const DEFAULT_TIMEOUT_SECONDS = 600;

const backendSchema = z.strictObject({
  kind: z.enum(["comfyui", "a1111"]),
  url: z.string().check(
    z.refine((value) => {
      try {
        const url = new URL(value);
        return url.protocol === "http:" || url.protocol === "https:";
      } catch {
        return false;
      }
    }, "expected an http:// or https:// URL"),
  ),
  model_folder: z.string().check(z.minLength(1)),
  model_prefix: z.optional(z.string()),
  headers: z.optional(z.record(z.string(), z.string())),
  timeout_seconds: z.optional(z.number().check(z.positive(), z.maximum(86_400))),
});

const configSchema = z.strictObject({
  backends: z.record(
    z.string().check(z.regex(/^[A-Za-z0-9_.-]+$/, "backend names are letters, digits, _ . and -")),
    backendSchema,
  ),
  default_backend: z.optional(z.string()),
});

/** The config file gyoza would read, by the precedence above, or undefined when there is none. */
export async function findGyozaConfig(
  options: { path?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<string | undefined> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  if (options.path) return resolve(cwd, options.path);
  if (env.GYOZA_CONFIG) return resolve(cwd, env.GYOZA_CONFIG);
  const candidates = [
    join(cwd, "gyoza.yaml"),
    join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "gyoza", "gyoza.yaml"),
  ];
  for (const candidate of candidates) {
    try {
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {}
  }
  return undefined;
}

/** Reads and checks the config (see `GyozaConfig` for where it is looked for). */
export async function loadGyozaConfig(
  options: { path?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<GyozaConfig> {
  const file = await findGyozaConfig(options);
  if (!file) {
    throw new GyozaError("usage", "no gyoza.yaml found (it names your ComfyUI or A1111 backend)", {
      fix: "copy gyoza.example.yaml to ./gyoza.yaml or ~/.config/gyoza/gyoza.yaml and edit it, or pass --config PATH",
    });
  }
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    throw new GyozaError("io", `cannot read the config: ${(cause as Error).message}`, { file, cause });
  }
  return parseGyozaConfig(text, file);
}

/** Parses config text; errors name the file and the key at fault. */
export function parseGyozaConfig(text: string, file: string): GyozaConfig {
  let data: unknown;
  try {
    data = parseYaml(text, { maxAliasCount: 100 });
  } catch (cause) {
    throw new GyozaError("usage", `not valid YAML: ${(cause as Error).message}`, { file, cause });
  }
  const parsed = configSchema.safeParse(data ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map(String).join(".");
    let message = issue.message;
    if (issue.code === "unrecognized_keys") {
      const key = issue.keys[0]!;
      const known = path === "" ? ["backends", "default_backend"] : Object.keys(backendSchema.shape);
      const guess = didYouMean(key, known);
      message = `unknown key '${key}'${guess ? ` (did you mean '${guess}'?)` : ""}; known: ${known.join(", ")}`;
    } else if (issue.code === "invalid_type" && issue.input === undefined) {
      message = "this key is required";
    }
    throw new GyozaError("usage", message, {
      file,
      path: issue.code === "unrecognized_keys" ? [path, issue.keys[0]].filter(Boolean).join(".") : path,
    });
  }
  const base = resolve(file, "..");
  const backends: BackendConfig[] = Object.entries(parsed.data.backends).map(([name, entry]) => ({
    name,
    kind: entry.kind,
    url: entry.url.replace(/\/+$/, ""),
    modelFolder: isAbsolute(expandHome(entry.model_folder))
      ? expandHome(entry.model_folder)
      : resolve(base, entry.model_folder),
    modelPrefix: (entry.model_prefix ?? "").replace(/^[\\/]+|[\\/]+$/g, ""),
    headers: entry.headers ?? {},
    timeoutSeconds: entry.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS,
  }));
  const defaultBackend = parsed.data.default_backend;
  if (defaultBackend !== undefined && !backends.some((backend) => backend.name === defaultBackend)) {
    throw new GyozaError("usage", `default_backend '${defaultBackend}' is not one of the backends`, {
      file,
      path: "default_backend",
      fix: `name one of: ${backends.map((backend) => backend.name).join(", ") || "(none configured)"}`,
    });
  }
  return { file, backends, defaultBackend };
}

/** The backend `--backend NAME` picks, else default_backend, else the only one. */
export function pickBackend(config: GyozaConfig, name?: string): BackendConfig {
  const names = config.backends.map((backend) => backend.name);
  const wanted = name ?? config.defaultBackend;
  if (wanted === undefined) {
    if (config.backends.length === 1) return config.backends[0]!;
    throw new GyozaError(
      "usage",
      config.backends.length === 0 ? "the config names no backends" : "several backends are configured",
      {
        file: config.file,
        fix:
          config.backends.length === 0
            ? "add one under backends: (see gyoza.example.yaml)"
            : `pass --backend NAME (one of: ${names.join(", ")}) or set default_backend`,
      },
    );
  }
  const found = config.backends.find((backend) => backend.name === wanted);
  if (found) return found;
  const guess = didYouMean(wanted, names);
  throw new GyozaError(
    "unknown-id",
    `no backend named '${wanted}'${guess ? ` (did you mean '${guess}'?)` : ""}`,
    {
      file: config.file,
      fix: `configured: ${names.join(", ") || "(none)"}`,
    },
  );
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
}

import { randomBytes } from "node:crypto";
import { stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { isGyozaError } from "../errors.js";
import { writeFileAtomically } from "../io/atomic-file.js";
import type { BackendCheck, BackendCheckItem, GenerationBackend } from "./types.js";

/** What `checkBackend` needs beyond GenerationBackend (both clients have it). */
export interface CheckableBackend extends GenerationBackend {
  version(options?: { signal?: AbortSignal }): Promise<string>;
  listSamplers(options?: { signal?: AbortSignal }): Promise<string[]>;
}

/** A valid safetensors file of one 1-element F32 tensor: what a backend lists, never loads. */
export function probeSafetensors(): Uint8Array {
  let header = JSON.stringify({
    __metadata__: { gyoza: "backend check probe: safe to delete" },
    gyoza_probe: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
  });
  header += " ".repeat((8 - (header.length % 8)) % 8);
  const json = Buffer.from(header, "utf8");
  const out = Buffer.alloc(8 + json.length + 4);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}

/**
 * `gyoza backend check`: is the backend there (version), what it lists (checkpoints, samplers),
 * and does it SEE files written into the configured model folder: a probe checkpoint
 * `gyoza-probe-<random>.safetensors` is written there (atomically), the backend refreshed, its
 * list searched for the probe's name, and the probe removed again whatever happened.
 */
export async function checkBackend(
  backend: CheckableBackend,
  options: { signal?: AbortSignal } = {},
): Promise<BackendCheck> {
  const config = backend.config;
  const items: BackendCheckItem[] = [];
  const signal = options.signal;
  const report = (): BackendCheck => ({ backend: config.name, ok: items.every((item) => item.ok), items });

  try {
    items.push({ check: "reachable", ok: true, detail: await backend.version({ signal }) });
  } catch (error) {
    items.push({ check: "reachable", ok: false, detail: message(error) });
    return report();
  }
  let before: string[] = [];
  try {
    before = await backend.listCheckpoints({ signal });
    items.push({
      check: "checkpoints",
      ok: true,
      detail: `${before.length} listed${before.length ? `: ${preview(before)}` : ""}`,
    });
  } catch (error) {
    items.push({ check: "checkpoints", ok: false, detail: message(error) });
  }
  try {
    const samplers = await backend.listSamplers({ signal });
    items.push({
      check: "samplers",
      ok: samplers.length > 0,
      detail: `${samplers.length}: ${preview(samplers)}`,
    });
  } catch (error) {
    items.push({ check: "samplers", ok: false, detail: message(error) });
  }

  const folder = config.modelFolder;
  try {
    if (!(await stat(folder)).isDirectory()) throw new Error("not a folder");
  } catch (error) {
    items.push({
      check: "model folder",
      ok: false,
      detail: `${folder} cannot be used: ${message(error)}\nfix: create it, or set model_folder in gyoza.yaml to a folder the backend reads`,
    });
    return report();
  }
  const fileName = `gyoza-probe-${randomBytes(4).toString("hex")}.safetensors`;
  const probePath = join(folder, fileName);
  try {
    await writeFileAtomically(probePath, probeSafetensors());
  } catch (error) {
    items.push({
      check: "model folder",
      ok: false,
      detail: `gyoza cannot write into ${folder}: ${message(error)}`,
    });
    return report();
  }
  try {
    await backend.refreshModels({ signal });
    const wanted = backend.checkpointName(fileName);
    const listed = await backend.listCheckpoints({ signal });
    const seen = listed.includes(wanted);
    items.push({
      check: "sees model folder",
      ok: seen,
      detail: seen
        ? `a probe written to ${folder} is listed as ${wanted}`
        : `a probe written to ${folder} is not listed by the backend (looked for '${wanted}'${
            listed.some((name) => name.endsWith(fileName))
              ? `; it is listed as '${listed.find((name) => name.endsWith(fileName))}': fix model_prefix`
              : ""
          })\n${folderFix(backend, folder)}`,
    });
  } catch (error) {
    items.push({ check: "sees model folder", ok: false, detail: message(error) });
  } finally {
    await unlink(probePath).catch(() => {});
    // the webui forgets the probe at its next refresh; ComfyUI's list follows the folder
    await backend.refreshModels({ signal }).catch(() => {});
  }
  return report();
}

function folderFix(backend: GenerationBackend, folder: string): string {
  const config = backend.config;
  if (config.kind === "comfyui") {
    return [
      "fix: add the folder to ComfyUI's extra_model_paths.yaml and restart ComfyUI:",
      "  gyoza:",
      `    base_path: ${folder}`,
      "    checkpoints: .",
      "  (or point model_folder at ComfyUI's models/checkpoints; model_prefix is its subfolder, if any)",
    ].join("\n");
  }
  return `fix: start the webui with --ckpt-dir ${folder} (or point model_folder at its models/Stable-diffusion folder; model_prefix is the subfolder, if any)`;
}

function message(error: unknown): string {
  if (isGyozaError(error)) return error.fix ? `${error.message}\nfix: ${error.fix}` : error.message;
  return error instanceof Error ? error.message : String(error);
}

function preview(names: string[]): string {
  const shown = names.slice(0, 5).join(", ");
  return names.length > 5 ? `${shown}, … (+${names.length - 5})` : shown;
}

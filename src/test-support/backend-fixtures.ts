/** Shared pieces of the backend tests (stand-in or real): a tiny checkpoint, a config, a request. */
import { writeFile } from "node:fs/promises";
import type { BackendConfig, GenerateRequest } from "../backends/types.js";
import { buildValidSafetensors, pseudoRandomBytes } from "./build-safetensors.js";

export async function writeTinyCheckpoint(path: string, seed: number): Promise<void> {
  const data = pseudoRandomBytes(64, seed);
  await writeFile(path, buildValidSafetensors([{ key: "model.w", dtype: "F32", shape: [16], data }]));
}

export function backendConfig(
  kind: "comfyui" | "a1111",
  url: string,
  modelFolder: string,
  extra: Partial<BackendConfig> = {},
): BackendConfig {
  return { name: kind, kind, url, modelFolder, modelPrefix: "", headers: {}, timeoutSeconds: 30, ...extra };
}

export const REQUEST: Omit<GenerateRequest, "checkpoint"> = {
  prompt: "a gyoza on a plate",
  negativePrompt: "blurry",
  seed: 42,
  steps: 6,
  cfg: 7,
  sampler: "DPM++ 2M",
  scheduler: "Karras",
  width: 512,
  height: 512,
  clipSkip: 2,
};

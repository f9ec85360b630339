import { A1111Backend } from "./a1111-client.js";
import { ComfyUIBackend } from "./comfyui-client.js";
import type { BackendConfig, GenerationBackend } from "./types.js";

export {
  A1111_PROGRESS_POLL_MS,
  A1111Backend,
  buildA1111Payload,
  describeA1111Error,
} from "./a1111-client.js";
export { type CheckableBackend, checkBackend, probeSafetensors } from "./check.js";
export {
  buildComfyGraph,
  COMFY_SAVE_NODE,
  type ComfyGraph,
  type ComfyNode,
  ComfyUIBackend,
  comboOptions,
  describeComfyRefusal,
} from "./comfyui-client.js";
export {
  DEFAULT_TIMEOUT_SECONDS,
  findGyozaConfig,
  type GyozaConfig,
  loadGyozaConfig,
  parseGyozaConfig,
  pickBackend,
} from "./config.js";
export { A1111_TO_COMFY_SAMPLERS, A1111_TO_COMFY_SCHEDULERS, comfySamplerFor } from "./samplers.js";
export type * from "./types.js";

/** The client for a configured backend. */
export function createBackend(config: BackendConfig): GenerationBackend & {
  version(options?: { signal?: AbortSignal }): Promise<string>;
  listSamplers(options?: { signal?: AbortSignal }): Promise<string[]>;
} {
  return config.kind === "comfyui" ? new ComfyUIBackend(config) : new A1111Backend(config);
}

/**
 * The generation backends gyoza drives (ComfyUI, A1111/Forge/SD.Next): what a user configures,
 * what a generation asks for and what comes back. The clients live beside this file; `sample`,
 * `grid` and `automix` only ever see `GenerationBackend`.
 */

export type BackendKind = "comfyui" | "a1111";

/** One backend as configured in `gyoza.yaml` (see `loadGyozaConfig`). */
export interface BackendConfig {
  /** The name a user picks it by (`--backend NAME`). */
  name: string;
  kind: BackendKind;
  /** Base URL, e.g. http://127.0.0.1:8188 (ComfyUI) or http://127.0.0.1:7860 (A1111). */
  url: string;
  /**
   * A folder the backend loads checkpoints from, as a path on this machine: gyoza writes candidate
   * merges here (its checkpoints folder, a subfolder of it, or a folder added through ComfyUI's
   * `extra_model_paths.yaml`; may sit on /dev/shm).
   */
  modelFolder: string;
  /** Where that folder sits inside the backend's checkpoint list ("" = top level, "gyoza" = a subfolder). */
  modelPrefix: string;
  /** Extra request headers (e.g. `Authorization`), sent with every call. */
  headers: Record<string, string>;
  /** Longest wait for one image, in seconds. */
  timeoutSeconds: number;
}

/** The generation settings of one image, in the user's terms (A1111 infotext names in comments). */
export interface GenerationParams {
  prompt: string;
  /** "Negative prompt". */
  negativePrompt: string;
  seed: number;
  steps: number;
  /** "CFG scale". */
  cfg: number;
  /** A1111 sampler name ("DPM++ 2M", "Euler a"); clients map it to ComfyUI's sampler_name/scheduler. */
  sampler: string;
  /** "Schedule type" ("Karras", "Automatic"). */
  scheduler: string;
  width: number;
  height: number;
  /** "Clip skip": 1 = last CLIP layer, 2 = one before (ComfyUI stop_at_clip_layer = -clipSkip). */
  clipSkip: number;
  /** A VAE file name the backend lists, or undefined for the checkpoint's own VAE. */
  vae?: string;
  /** LoRAs the backend applies at generation time (names it lists). */
  loras?: { name: string; strength: number }[];
}

export interface GenerateRequest extends GenerationParams {
  /** The checkpoint as the backend names it (`checkpointName` of the file gyoza placed). */
  checkpoint: string;
}

export interface GeneratedImage {
  /** The PNG bytes as the backend returned them (metadata gyoza adds is written by the caller). */
  png: Buffer;
  /** A1111's infotext for this image, when the backend gave one. */
  infotext?: string;
  /** ComfyUI's API-format graph that produced it, when the backend is ComfyUI. */
  comfyPrompt?: Record<string, unknown>;
  /** Backend's job/prompt id, for the record. */
  backendJobId?: string;
}

export type GenerationProgress =
  | { type: "queued"; position?: number }
  | { type: "step"; step: number; totalSteps: number }
  | { type: "done" };

export interface GenerateOptions {
  signal?: AbortSignal;
  onProgress?: (event: GenerationProgress) => void;
}

/** One line of `gyoza backend check`. */
export interface BackendCheckItem {
  check: string;
  ok: boolean;
  detail: string;
}

export interface BackendCheck {
  backend: string;
  ok: boolean;
  items: BackendCheckItem[];
}

export interface GenerationBackend {
  readonly config: BackendConfig;
  /** Reachability, version, samplers, and whether the backend sees files written into `modelFolder`. */
  check(options?: { signal?: AbortSignal }): Promise<BackendCheck>;
  /** The checkpoint names the backend lists now. */
  listCheckpoints(options?: { signal?: AbortSignal }): Promise<string[]>;
  listVaes(options?: { signal?: AbortSignal }): Promise<string[]>;
  /** Makes the backend re-read its model folders (A1111 refresh-checkpoints; ComfyUI lists live). */
  refreshModels(options?: { signal?: AbortSignal }): Promise<void>;
  /** The name the backend will list for `fileName` written into `modelFolder`. */
  checkpointName(fileName: string): string;
  generate(request: GenerateRequest, options?: GenerateOptions): Promise<GeneratedImage>;
}

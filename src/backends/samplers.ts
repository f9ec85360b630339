import { GyozaError } from "../errors.js";

/**
 * A1111 sampler names (as in infotexts: "Sampler: DPM++ 2M") to ComfyUI's KSampler sampler_name,
 * and A1111 schedule types ("Schedule type: Karras") to ComfyUI's scheduler. `automatic` is the
 * schedule A1111 picks for that sampler when the schedule type is "Automatic" (1.9+).
 */
export const A1111_TO_COMFY_SAMPLERS: Readonly<Record<string, { sampler: string; automatic: string }>> = {
  Euler: { sampler: "euler", automatic: "normal" },
  "Euler a": { sampler: "euler_ancestral", automatic: "normal" },
  Heun: { sampler: "heun", automatic: "normal" },
  LMS: { sampler: "lms", automatic: "normal" },
  DPM2: { sampler: "dpm_2", automatic: "karras" },
  "DPM2 a": { sampler: "dpm_2_ancestral", automatic: "karras" },
  "DPM fast": { sampler: "dpm_fast", automatic: "normal" },
  "DPM adaptive": { sampler: "dpm_adaptive", automatic: "normal" },
  "DPM++ 2S a": { sampler: "dpmpp_2s_ancestral", automatic: "karras" },
  "DPM++ 2M": { sampler: "dpmpp_2m", automatic: "karras" },
  "DPM++ SDE": { sampler: "dpmpp_sde", automatic: "karras" },
  "DPM++ 2M SDE": { sampler: "dpmpp_2m_sde", automatic: "exponential" },
  "DPM++ 3M SDE": { sampler: "dpmpp_3m_sde", automatic: "exponential" },
  "Euler CFG++": { sampler: "euler_cfg_pp", automatic: "normal" },
  LCM: { sampler: "lcm", automatic: "normal" },
  DDIM: { sampler: "ddim", automatic: "ddim_uniform" },
  DDPM: { sampler: "ddpm", automatic: "normal" },
  UniPC: { sampler: "uni_pc", automatic: "normal" },
  IPNDM: { sampler: "ipndm", automatic: "normal" },
  DEIS: { sampler: "deis", automatic: "normal" },
};

export const A1111_TO_COMFY_SCHEDULERS: Readonly<Record<string, string>> = {
  Uniform: "normal",
  Normal: "normal",
  Karras: "karras",
  Exponential: "exponential",
  "SGM Uniform": "sgm_uniform",
  Simple: "simple",
  DDIM: "ddim_uniform",
  Beta: "beta",
  "KL Optimal": "kl_optimal",
};

/**
 * The ComfyUI sampler_name and scheduler for an A1111 sampler and schedule type. Old combined
 * names ("DPM++ 2M Karras") are split; ComfyUI's own names ("dpmpp_2m", "karras") pass through.
 * An unknown name is a "usage" error listing the known ones.
 */
export function comfySamplerFor(sampler: string, scheduler: string): { sampler: string; scheduler: string } {
  let name = sampler.trim();
  let schedule = scheduler.trim();
  const comfyNames = new Set(Object.values(A1111_TO_COMFY_SAMPLERS).map((entry) => entry.sampler));
  const comfySchedules = new Set(Object.values(A1111_TO_COMFY_SCHEDULERS));
  if (!(name in A1111_TO_COMFY_SAMPLERS) && !comfyNames.has(name)) {
    for (const suffix of Object.keys(A1111_TO_COMFY_SCHEDULERS)) {
      if (name.endsWith(` ${suffix}`) && name.slice(0, -suffix.length - 1) in A1111_TO_COMFY_SAMPLERS) {
        name = name.slice(0, -suffix.length - 1);
        if (schedule === "" || schedule === "Automatic") schedule = suffix;
        break;
      }
    }
  }
  const entry =
    A1111_TO_COMFY_SAMPLERS[name] ??
    (comfyNames.has(name) ? { sampler: name, automatic: "normal" } : undefined);
  if (!entry) {
    throw new GyozaError("unknown-id", `sampler '${sampler}' has no ComfyUI equivalent gyoza knows`, {
      fix: `use one of: ${Object.keys(A1111_TO_COMFY_SAMPLERS).join(", ")} (or a ComfyUI sampler_name such as dpmpp_2m)`,
    });
  }
  let comfySchedule: string | undefined;
  if (schedule === "" || schedule === "Automatic") comfySchedule = entry.automatic;
  else
    comfySchedule =
      A1111_TO_COMFY_SCHEDULERS[schedule] ?? (comfySchedules.has(schedule) ? schedule : undefined);
  if (!comfySchedule) {
    throw new GyozaError("unknown-id", `schedule type '${scheduler}' has no ComfyUI equivalent gyoza knows`, {
      fix: `use one of: Automatic, ${Object.keys(A1111_TO_COMFY_SCHEDULERS).join(", ")}`,
    });
  }
  return { sampler: entry.sampler, scheduler: comfySchedule };
}

import { BufferByteSource } from "../../../io/byte-source.js";
import type { DType } from "../../../io/dtype.js";
import { encodeFromFloat32 } from "../../../io/float-convert.js";
import { openCheckpointSource } from "../../../io/open-checkpoint.js";
import type { Checkpoint } from "../../../io/tensor.js";
import { buildValidSafetensors, type TinyTensor } from "../../../test-support/build-safetensors.js";

/** One LoRA module as a trainer writes it: up [out, rank(, 1, 1)], down [rank, in(, kh, kw)], alpha. */
export interface LoraModuleSpec {
  /** kohya name (lora_unet_…) or, with `naming: "peft"`, the dotted path (unet.down_blocks.…). */
  name: string;
  out: number;
  in: number;
  rank?: number;
  /** A convolution: the down's kernel (1x1 for proj_in in SD 1.x, 3x3 for LoCon's resnet convs). */
  kernel?: [number, number];
  /** The stored alpha; null leaves it out. Default: half the rank. */
  alpha?: number | null;
  /** Override one part's shape (to build broken files). */
  upShape?: number[];
  downShape?: number[];
}

export interface LoraFileOptions {
  naming?: "kohya" | "peft";
  dtype?: DType;
  metadata?: Record<string, string>;
  seed?: number;
}

/** Small finite values (not random bytes: those could be NaN), reproducible from `seed`. */
function weights(count: number, dtype: DType, seed: number): Uint8Array {
  const values = new Float32Array(count);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    values[i] = (state / 2 ** 32 - 0.5) / 10;
  }
  return encodeFromFloat32(values, dtype);
}

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** The tensors of a LoRA file with real module names and shapes (rank 4 unless said). */
export function loraTensors(modules: readonly LoraModuleSpec[], options: LoraFileOptions = {}): TinyTensor[] {
  const dtype = options.dtype ?? "F16";
  const tensors: TinyTensor[] = [];
  let seed = options.seed ?? 1;
  for (const module of modules) {
    const rank = module.rank ?? 4;
    const kernel = module.kernel;
    const down = module.downShape ?? (kernel ? [rank, module.in, ...kernel] : [rank, module.in]);
    const up = module.upShape ?? (kernel ? [module.out, rank, 1, 1] : [module.out, rank]);
    const [upKey, downKey, alphaKey] =
      options.naming === "peft"
        ? [`${module.name}.lora_B.weight`, `${module.name}.lora_A.weight`, `${module.name}.alpha`]
        : [`${module.name}.lora_up.weight`, `${module.name}.lora_down.weight`, `${module.name}.alpha`];
    tensors.push({ key: downKey, dtype, shape: down, data: weights(count(down), dtype, seed++) });
    tensors.push({ key: upKey, dtype, shape: up, data: weights(count(up), dtype, seed++) });
    const alpha = module.alpha === undefined ? rank / 2 : module.alpha;
    if (alpha !== null) {
      tensors.push({
        key: alphaKey,
        dtype: "F32",
        shape: [],
        data: new Uint8Array(new Float32Array([alpha]).buffer),
      });
    }
  }
  return tensors;
}

/** A LoRA safetensors file in memory. */
export function buildLoraFile(modules: readonly LoraModuleSpec[], options: LoraFileOptions = {}): Uint8Array {
  return buildValidSafetensors(loraTensors(modules, options), options.metadata);
}

/** A LoRA opened as a checkpoint straight from memory. */
export function openLora(
  modules: readonly LoraModuleSpec[],
  options: LoraFileOptions = {},
  path = "test-lora.safetensors",
): Promise<Checkpoint> {
  return openCheckpointSource(new BufferByteSource(buildLoraFile(modules, options), path), path);
}

/** A file of raw tensors (LoHa, LoKr, hand-made breakage) opened from memory. */
export function openTensors(
  tensors: readonly { key: string; shape: number[]; dtype?: DType }[],
  metadata?: Record<string, string>,
  path = "test-lora.safetensors",
): Promise<Checkpoint> {
  const built = tensors.map((t, i) => {
    const dtype = t.dtype ?? "F16";
    return { key: t.key, dtype, shape: t.shape, data: weights(count(t.shape), dtype, i + 1) };
  });
  const bytes = buildValidSafetensors(built, metadata);
  return openCheckpointSource(new BufferByteSource(bytes, path), path);
}

/** A real-shaped SD 1.x kohya LoRA: rank 4, diffusers UNet names, a 1x1-conv proj_in, CLIP-L text encoder. */
export const SD1_KOHYA_MODULES: readonly LoraModuleSpec[] = [
  { name: "lora_unet_down_blocks_0_attentions_0_proj_in", out: 320, in: 320, kernel: [1, 1] },
  { name: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", out: 320, in: 320 },
  { name: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", out: 320, in: 768 },
  { name: "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj", out: 10240, in: 1280 },
  { name: "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0", out: 320, in: 320 },
  { name: "lora_te_text_model_encoder_layers_0_self_attn_q_proj", out: 768, in: 768 },
  { name: "lora_te_text_model_encoder_layers_11_mlp_fc2", out: 768, in: 3072 },
];

/** A real-shaped SDXL kohya LoRA: sgm UNet names, 2048-wide cross-attention, both text encoders. */
export const SDXL_KOHYA_MODULES: readonly LoraModuleSpec[] = [
  { name: "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", out: 640, in: 2048 },
  { name: "lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q", out: 640, in: 640 },
  { name: "lora_unet_middle_block_1_proj_in", out: 1280, in: 1280 },
  { name: "lora_unet_output_blocks_2_1_transformer_blocks_9_ff_net_2", out: 1280, in: 5120 },
  { name: "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", out: 768, in: 768 },
  { name: "lora_te2_text_model_encoder_layers_0_self_attn_k_proj", out: 1280, in: 1280 },
  { name: "lora_te2_text_model_encoder_layers_31_mlp_fc1", out: 5120, in: 1280 },
];

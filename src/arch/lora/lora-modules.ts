import type { StoredTensor } from "../../io/tensor.js";

/** How one module stores its weight change (kohya/LyCORIS algorithm names). */
export type LoraAlgorithm = "lora" | "loha" | "lokr" | "full" | "other";

/** The part of the model a module belongs to, from its name prefix. */
export type LoraGroup = "unet" | "text_encoder" | "text_encoder_2";

/** One adapted layer: its tensors by role (up, down, mid, alpha, hada_w1_a, lokr_w1, …). */
export interface LoraModule {
  /** kohya's name (lora_unet_…, lora_te_…, lora_te1_…, lora_te2_…); PEFT names are converted to it. */
  readonly name: string;
  /** The name as the file spells it (PEFT: the dotted module path). */
  readonly fileName: string;
  readonly group: LoraGroup;
  readonly algorithm: LoraAlgorithm;
  readonly tensors: ReadonlyMap<string, StoredTensor>;
}

/** How a file names its modules. */
export type LoraNaming = "kohya" | "peft";

export interface ParsedLoraKeys {
  naming: LoraNaming | null;
  modules: LoraModule[];
  /** Keys that are no part of a recognised module. */
  unknownKeys: string[];
}

/** Tensor suffix → role, for kohya and LyCORIS names (`<module>.<suffix>`). */
const KOHYA_ROLES: Readonly<Record<string, string>> = {
  "lora_up.weight": "up",
  "lora_down.weight": "down",
  "lora_mid.weight": "mid",
  alpha: "alpha",
  dora_scale: "dora_scale",
  hada_w1_a: "hada_w1_a",
  hada_w1_b: "hada_w1_b",
  hada_w2_a: "hada_w2_a",
  hada_w2_b: "hada_w2_b",
  hada_t1: "hada_t1",
  hada_t2: "hada_t2",
  lokr_w1: "lokr_w1",
  lokr_w1_a: "lokr_w1_a",
  lokr_w1_b: "lokr_w1_b",
  lokr_w2: "lokr_w2",
  lokr_w2_a: "lokr_w2_a",
  lokr_w2_b: "lokr_w2_b",
  lokr_t2: "lokr_t2",
  diff: "diff",
  diff_b: "diff_b",
  oft_blocks: "oft_blocks",
  oft_diag: "oft_diag",
  "oft_diag.weight": "oft_diag",
  rescale: "rescale",
  on_input: "on_input",
  weight: "ia3_weight",
  w_norm: "w_norm",
  b_norm: "b_norm",
};

/** diffusers/PEFT suffixes (`<dotted module path>.<suffix>`). */
const PEFT_ROLES: Readonly<Record<string, string>> = {
  "lora_A.weight": "down",
  "lora_B.weight": "up",
  alpha: "alpha",
  lora_magnitude_vector: "dora_scale",
  "lora_magnitude_vector.weight": "dora_scale",
};

/** kohya module name prefix → group. */
const KOHYA_PREFIXES: readonly [string, LoraGroup][] = [
  ["lora_unet_", "unet"],
  ["lora_te1_", "text_encoder"],
  ["lora_te2_", "text_encoder_2"],
  ["lora_te_", "text_encoder"],
];

const KOHYA_KEY = /^(lora_(?:unet|te\d?)_[^.]+)\.(.+)$/;
const PEFT_KEY =
  /^(unet|text_encoder|text_encoder_2)\.(.+)\.(lora_A\.weight|lora_B\.weight|alpha|lora_magnitude_vector(?:\.weight)?)$/;

/**
 * Splits a LoRA file's keys into modules, from names only. kohya and LyCORIS files name modules
 * `lora_unet_<path with _>`; diffusers PEFT files `unet.<dotted path>.lora_A.weight`, which become
 * kohya names here (text_encoder → lora_te_, or lora_te1_ when a text_encoder_2 is present).
 */
export function parseLoraKeys(tensors: ReadonlyMap<string, StoredTensor>): ParsedLoraKeys {
  const byModule = new Map<
    string,
    { fileName: string; group: LoraGroup; tensors: Map<string, StoredTensor> }
  >();
  const unknownKeys: string[] = [];
  const keys = [...tensors.keys()];
  const twoTextEncoders = keys.some((key) => key.startsWith("text_encoder_2."));
  let kohya = 0;
  let peft = 0;
  for (const [key, tensor] of tensors) {
    const parsed = parseKohyaKey(key) ?? parsePeftKey(key, twoTextEncoders);
    if (!parsed) {
      unknownKeys.push(key);
      continue;
    }
    if (parsed.naming === "kohya") kohya++;
    else peft++;
    const entry = byModule.get(parsed.name) ?? {
      fileName: parsed.fileName,
      group: parsed.group,
      tensors: new Map<string, StoredTensor>(),
    };
    entry.tensors.set(parsed.role, tensor);
    byModule.set(parsed.name, entry);
  }
  const modules = [...byModule].map(([name, entry]) => ({
    name,
    fileName: entry.fileName,
    group: entry.group,
    algorithm: algorithmOf(entry.tensors),
    tensors: entry.tensors,
  }));
  const naming = kohya === 0 && peft === 0 ? null : peft > kohya ? "peft" : "kohya";
  return { naming, modules, unknownKeys };
}

interface ParsedKey {
  naming: LoraNaming;
  name: string;
  fileName: string;
  group: LoraGroup;
  role: string;
}

function parseKohyaKey(key: string): ParsedKey | undefined {
  const match = KOHYA_KEY.exec(key);
  if (!match) return undefined;
  const role = KOHYA_ROLES[match[2]!];
  const prefix = KOHYA_PREFIXES.find(([p]) => match[1]!.startsWith(p));
  if (!role || !prefix) return undefined;
  return { naming: "kohya", name: match[1]!, fileName: match[1]!, group: prefix[1], role };
}

function parsePeftKey(key: string, twoTextEncoders: boolean): ParsedKey | undefined {
  const match = PEFT_KEY.exec(key);
  if (!match) return undefined;
  const [, component, path, suffix] = match as unknown as [string, string, string, string];
  const prefix =
    component === "unet"
      ? "lora_unet_"
      : component === "text_encoder_2"
        ? "lora_te2_"
        : twoTextEncoders
          ? "lora_te1_"
          : "lora_te_";
  const group: LoraGroup =
    component === "unet" ? "unet" : component === "text_encoder_2" ? "text_encoder_2" : "text_encoder";
  return {
    naming: "peft",
    name: prefix + path.replaceAll(".", "_"),
    fileName: `${component}.${path}`,
    group,
    role: PEFT_ROLES[suffix]!,
  };
}

function algorithmOf(tensors: ReadonlyMap<string, StoredTensor>): LoraAlgorithm {
  if (tensors.has("up") || tensors.has("down")) return "lora";
  const roles = [...tensors.keys()];
  if (roles.some((role) => role.startsWith("hada_"))) return "loha";
  if (roles.some((role) => role.startsWith("lokr_"))) return "lokr";
  if (tensors.has("diff")) return "full";
  return "other";
}

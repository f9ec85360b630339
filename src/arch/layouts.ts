import type { DType } from "../io/dtype.js";
import sd1Kohya from "./layouts/sd1-kohya.json" with { type: "json" };
import sd1 from "./layouts/sd1-ldm.json" with { type: "json" };
import sd2 from "./layouts/sd2-ldm.json" with { type: "json" };
import sdxlKohya from "./layouts/sdxl-kohya.json" with { type: "json" };
import sdxl from "./layouts/sdxl-sgm.json" with { type: "json" };

/** One tensor of a reference state-dict layout (generated from shared/reference/model-configs). */
export interface LayoutEntry {
  readonly key: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly component: string;
  readonly optional: boolean;
  /** Older names of the same tensor (NovelAI-era CLIP keys). */
  readonly aliases: readonly string[];
}

export interface Layout {
  readonly id: string;
  readonly entries: readonly LayoutEntry[];
  /** Every key and alias → its entry. */
  readonly byKey: ReadonlyMap<string, LayoutEntry>;
}

type RawRow = [string, number[], string, number?, string[]?];
interface RawLayout {
  id: string;
  components: Record<string, RawRow[]>;
}

const RAW: Record<string, RawLayout> = {
  "sd1-ldm": sd1 as unknown as RawLayout,
  "sd2-ldm": sd2 as unknown as RawLayout,
  "sdxl-sgm": sdxl as unknown as RawLayout,
  "sd1-kohya": sd1Kohya as unknown as RawLayout,
  "sdxl-kohya": sdxlKohya as unknown as RawLayout,
};

export const LAYOUT_IDS = Object.keys(RAW);

const cache = new Map<string, Layout>();

/**
 * EMA keys are the UNet keys under `model_ema.` with the `model.` prefix and every dot removed
 * (LitEma registers buffers with dots stripped), e.g. `model_ema.diffusion_modelinput_blocks00weight`.
 */
export function emaKeyOf(unetKey: string): string {
  return `model_ema.${unetKey.replace(/^model\./, "").replaceAll(".", "")}`;
}

export function getLayout(id: string, options: { withEma?: boolean } = {}): Layout {
  const cacheKey = `${id}:${options.withEma ? 1 : 0}`;
  const cached = cache.get(cacheKey);
  if (cached) return cached;
  const raw = RAW[id];
  if (!raw) throw new Error(`no layout ${id}`);
  const entries: LayoutEntry[] = [];
  for (const [component, rows] of Object.entries(raw.components)) {
    for (const [key, shape, dtype, optional, aliases] of rows) {
      entries.push({
        key,
        shape,
        dtype: dtype as DType,
        component,
        optional: optional === 1,
        aliases: aliases ?? [],
      });
    }
  }
  if (options.withEma) {
    const unet = entries.filter((e) => e.component === "diffuser");
    entries.push({
      key: "model_ema.decay",
      shape: [],
      dtype: "F32",
      component: "ema",
      optional: true,
      aliases: [],
    });
    entries.push({
      key: "model_ema.num_updates",
      shape: [],
      dtype: "I32",
      component: "ema",
      optional: true,
      aliases: [],
    });
    for (const e of unet)
      entries.push({ ...e, key: emaKeyOf(e.key), component: "ema", optional: true, aliases: [] });
  }
  const byKey = new Map<string, LayoutEntry>();
  for (const entry of entries) {
    byKey.set(entry.key, entry);
    for (const alias of entry.aliases) byKey.set(alias, entry);
  }
  const layout = { id, entries, byKey };
  cache.set(cacheKey, layout);
  return layout;
}

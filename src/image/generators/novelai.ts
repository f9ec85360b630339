import { emptyInfo, type GenerationInfo, isRecord, toNumber, toSeed, toText } from "./generation-info.js";
import { parseJsonObject } from "./lenient-json.js";

/** NovelAI's `Source` ends with the model's short hash: "NovelAI Diffusion V4.5 C02D4F98". */
const SOURCE_PATTERN = /^(.*?)\s+([0-9A-F]{8})$/i;

/** NovelAI PNG text (Title, Description, Software, Source, Comment JSON). */
export function infoFromNovelAi(chunks: Record<string, string>): GenerationInfo {
  const info = emptyInfo("novelai", chunks);
  const comment = parseJsonObject(chunks.Comment) ?? {};
  const v4Prompt =
    isRecord(comment.v4_prompt) && isRecord(comment.v4_prompt.caption) ? comment.v4_prompt.caption : {};
  const v4Negative =
    isRecord(comment.v4_negative_prompt) && isRecord(comment.v4_negative_prompt.caption)
      ? comment.v4_negative_prompt.caption
      : {};
  info.prompt = toText(comment.prompt) ?? toText(v4Prompt.base_caption) ?? chunks.Description;
  info.negativePrompt = toText(comment.uc) ?? toText(v4Negative.base_caption);
  info.seed = toSeed(comment.seed);
  info.steps = toNumber(comment.steps);
  info.cfgScale = toNumber(comment.scale);
  info.sampler = toText(comment.sampler);
  info.scheduler = toText(comment.noise_schedule);
  info.width = toNumber(comment.width);
  info.height = toNumber(comment.height);
  const source = SOURCE_PATTERN.exec(chunks.Source ?? "");
  if (source) info.model = { name: source[1]!, hash: source[2]! };
  else if (chunks.Source) info.model = { name: chunks.Source };
  for (const key of ["strength", "noise", "uncond_scale", "cfg_rescale", "request_type"]) {
    if (comment[key] !== undefined) info.extra[key] = comment[key];
  }
  if (chunks.Software) info.extra.software = chunks.Software;
  for (const key of Object.keys(info) as (keyof GenerationInfo)[])
    if (info[key] === undefined) delete info[key];
  return info;
}

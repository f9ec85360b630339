import { describe, expect, it } from "vitest";
import { infoFromInfotext } from "./generators/a1111.js";
import {
  formatInfotext,
  parseInfotext,
  parseParameterLine,
  quoteInfotextValue,
  unquoteInfotextValue,
} from "./infotext.js";
import { fixtureImages } from "./test-support/fixture-images.js";

const infotexts = fixtureImages().flatMap((fixture) =>
  [
    fixture.expected.chunks.parameters,
    fixture.expected.chunks.exif_user_comment,
    fixture.expected.stealth_pnginfo?.text,
  ]
    .filter(
      (text): text is string =>
        text !== undefined && !text.trimStart().startsWith("{") && text.includes("Steps: "),
    )
    .map((text) => [fixture.stem, text] as const),
);

describe("parseInfotext and formatInfotext", () => {
  it.each(infotexts)("gives back the exact infotext of %s", (_, text) => {
    expect(formatInfotext(parseInfotext(text))).toBe(text);
  });

  it("round-trips a multi-line prompt and negative prompt with quoted values", () => {
    const text = [
      "masterpiece, 1girl,",
      "gyoza, <lora:detail:0.6>",
      "Negative prompt: lowres,",
      "AuroraNegative",
      'Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 123, Size: 512x768, Model hash: 0123456789, Model: gyozaMix_v32, Clip skip: 2, Lora hashes: "detail: 0123456789ab, other: ba9876543210", TI hashes: "AuroraNegative: 1234abcd", Version: v1.6.0',
    ].join("\n");
    const parsed = parseInfotext(text);
    expect(parsed.prompt).toBe("masterpiece, 1girl,\ngyoza, <lora:detail:0.6>");
    expect(parsed.negativePrompt).toBe("lowres,\nAuroraNegative");
    expect(parsed.parameters.find((p) => p.key === "Lora hashes")?.value).toBe(
      "detail: 0123456789ab, other: ba9876543210",
    );
    expect(formatInfotext(parsed)).toBe(text);
  });

  it("treats a last line with fewer than 3 pairs as part of the prompt, as A1111 does", () => {
    const parsed = parseInfotext("a photo\nStyle: cinematic, Mood: calm");
    expect(parsed.prompt).toBe("a photo\nStyle: cinematic, Mood: calm");
    expect(parsed.parameters).toEqual([]);
    expect(formatInfotext(parsed)).toBe("a photo\nStyle: cinematic, Mood: calm");
  });

  it("reads an infotext that is only a parameter line", () => {
    expect(parseInfotext("Steps: 20, Sampler: Euler, CFG scale: 7")).toEqual({
      prompt: "",
      negativePrompt: undefined,
      parameters: [
        { key: "Steps", value: "20" },
        { key: "Sampler", value: "Euler" },
        { key: "CFG scale", value: "7" },
      ],
    });
  });

  it("keeps unquoted JSON objects and arrays whole", () => {
    const line =
      'Steps: 4, Hashes: {"model": "45a21ea00a", "lora:x": "abc, d"}, Civitai resources: [{"type":"lora","weight":0.8}], Version: f1';
    expect(parseParameterLine(line).map((p) => p.key)).toEqual([
      "Steps",
      "Hashes",
      "Civitai resources",
      "Version",
    ]);
    expect(formatInfotext(parseInfotext(line))).toBe(line);
  });

  it("quotes only values holding a comma, colon or newline, and re-quotes edited values", () => {
    expect(quoteInfotextValue("Euler a")).toBe("Euler a");
    expect(quoteInfotextValue("a: b")).toBe('"a: b"');
    expect(quoteInfotextValue('say "hi",\nbye')).toBe('"say \\"hi\\",\\nbye"');
    expect(unquoteInfotextValue('"a\\u00e9"')).toBe("aé");
    expect(unquoteInfotextValue('"broken')).toBe('"broken');
    const parsed = parseInfotext('p\nSteps: 1, Sampler: Euler, Template: "x, y", Seed: 2');
    parsed.parameters[2]!.value = "new: value";
    expect(formatInfotext(parsed)).toBe('p\nSteps: 1, Sampler: Euler, Template: "new: value", Seed: 2');
  });

  it("writes a key equal to its value bare, as create_infotext does", () => {
    const line = "Steps: 1, Sampler: Euler, CFG scale: 7, NGMS";
    expect(parseParameterLine(line).at(-1)).toEqual({ key: "NGMS", value: "NGMS" });
    expect(formatInfotext(parseInfotext(line))).toBe(line);
  });

  it("does not hang or throw on an unterminated quote or bracket", () => {
    for (const line of [
      'Steps: 1, Sampler: "Euler, CFG scale: 7, Seed: 1',
      'Steps: 1, Hashes: {"a": [1, 2, Seed: 3, Size: 1x1',
    ]) {
      expect(() => parseInfotext(line)).not.toThrow();
    }
  });
});

describe("infoFromInfotext", () => {
  it("maps Size, Clip skip (default 1), model, VAE, LoRA, TI and Hashes entries", () => {
    const info = infoFromInfotext(
      'gyoza <lora:detail:0.6>\nNegative prompt: AuroraNegative\nSteps: 28, Sampler: Euler a, Schedule type: Karras, CFG scale: 6.5, Seed: 4294967296, Size: 512x768, Model hash: 0123456789, Model: gyozaMix_v32, VAE hash: abcdef0123, VAE: kl-f8-anime2.ckpt, Lora hashes: "detail: 0123456789ab", TI hashes: "AuroraNegative: 1234abcd5678", Hashes: {"embed:AuroraNegative": "1234abcd56", "lora:other": "fedcba9876"}, RNG: CPU',
      "a1111",
      {},
    );
    expect(info).toMatchObject({
      prompt: "gyoza <lora:detail:0.6>",
      negativePrompt: "AuroraNegative",
      steps: 28,
      sampler: "Euler a",
      scheduler: "Karras",
      cfgScale: 6.5,
      seed: 4294967296,
      width: 512,
      height: 768,
      clipSkip: 1,
      model: { name: "gyozaMix_v32", hash: "0123456789" },
      vae: { name: "kl-f8-anime2.ckpt", hash: "abcdef0123" },
      loras: [
        { name: "detail", weight: 0.6, hash: "0123456789ab" },
        { name: "other", hash: "fedcba9876" },
      ],
      embeddings: [{ name: "AuroraNegative", hash: "1234abcd5678" }],
      extra: { RNG: "CPU" },
    });
  });
});

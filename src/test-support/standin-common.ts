/**
 * Shared parts of the backend stand-ins (comfyui-standin.ts, a1111-standin.ts), which are part of
 * the test suite: listing a model folder the way a backend does, a deterministic small PNG per
 * (checkpoint bytes, seed, prompt), and request faults.
 */
import { createHash } from "node:crypto";
import { open, readdir } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import sharp from "sharp";
import { makePngTextChunk, replacePngMetadata } from "../image/png-writer.js";

export const MODEL_EXTENSIONS = [".safetensors", ".ckpt", ".pt", ".pth", ".sft"];

/** Model files under `folder`, as a backend lists them: relative, "/"-separated, sorted; hidden and temp files skipped. */
export async function listModelFiles(folder: string, extensions = MODEL_EXTENSIONS): Promise<string[]> {
  const names: string[] = [];
  const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      if (entry.isDirectory()) await walk(join(dir, entry.name), `${prefix}${entry.name}/`, depth + 1);
      else if (entry.isFile() && extensions.some((ext) => entry.name.toLowerCase().endsWith(ext)))
        names.push(`${prefix}${entry.name}`);
    }
  };
  await walk(folder, "", 0);
  return names.sort();
}

/** SHA-256 of the first 16 MiB of a model file: what the stand-in image's colours come from. */
export async function fileFingerprint(path: string): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const hash = createHash("sha256");
    const buffer = Buffer.alloc(1 << 20);
    for (let position = 0; position < 16 << 20; ) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
    }
    return hash.digest();
  } finally {
    await handle.close();
  }
}

/**
 * A small PNG (the requested size / 8, at least 16 px a side) whose pixels depend on the checkpoint
 * (background gradient), the seed (where the discs sit) and the prompt (their colour), with the
 * given text chunks right after IHDR, as the real backends write them.
 */
export async function renderStandinPng(options: {
  checkpoint: Buffer;
  vae?: Buffer | undefined;
  seed: number;
  prompt: string;
  width: number;
  height: number;
  texts: Record<string, string>;
}): Promise<Buffer> {
  const width = Math.min(256, Math.max(16, Math.round(options.width / 8)));
  const height = Math.min(256, Math.max(16, Math.round(options.height / 8)));
  const model = options.vae ? xorBytes(options.checkpoint, options.vae) : options.checkpoint;
  const promptHash = createHash("sha256").update(options.prompt).digest();
  let state = (options.seed ^ 0x9e3779b9) >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000;
  };
  const discs = Array.from({ length: 4 }, (_, index) => ({
    x: next() * width,
    y: next() * height,
    r: (0.1 + next() * 0.2) * Math.min(width, height),
    color: [promptHash[index * 3]!, promptHash[index * 3 + 1]!, promptHash[index * 3 + 2]!],
  }));
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x + y) / (width + height);
      let rgb = [0, 1, 2].map((c) => Math.round(model[c]! * (1 - t) + model[c + 3]! * t));
      for (const disc of discs) {
        if ((x - disc.x) ** 2 + (y - disc.y) ** 2 <= disc.r ** 2) rgb = disc.color;
      }
      pixels.set(rgb, (y * width + x) * 3);
    }
  }
  const png = await sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
  const chunks = Object.entries(options.texts).map(([key, text]) => makePngTextChunk(key, text));
  return Buffer.from(replacePngMetadata(png, chunks));
}

function xorBytes(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((byte, index) => byte ^ b[index % b.length]!));
}

/** What the next matching requests get instead of their answer. */
export type StandinFault =
  | { status: number; body?: unknown; text?: string }
  | { delayMs: number }
  /** the connection is closed without an answer */
  | { drop: true };

export class FaultQueue {
  private readonly faults: { fault: StandinFault; times: number; path?: string }[] = [];

  /** The next `times` requests (to `path`, when given; any, else) get `fault`. */
  inject(fault: StandinFault, times = 1, path?: string): void {
    this.faults.push({ fault, times, ...(path === undefined ? {} : { path }) });
  }

  /** Applies a pending fault; true when the request was answered (or dropped) by it. */
  async apply(path: string, response: ServerResponse): Promise<boolean> {
    const index = this.faults.findIndex((entry) => entry.path === undefined || entry.path === path);
    if (index < 0) return false;
    const entry = this.faults[index]!;
    if (--entry.times <= 0) this.faults.splice(index, 1);
    const fault = entry.fault;
    if ("delayMs" in fault) {
      await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
      return false;
    }
    if ("drop" in fault) {
      response.socket?.destroy();
      return true;
    }
    const text = fault.text ?? JSON.stringify(fault.body ?? null);
    response.writeHead(fault.status, {
      "content-type": fault.text === undefined ? "application/json" : "text/plain",
    });
    response.end(text);
    return true;
  }
}

/** The request body parsed as JSON (undefined when empty; `invalid` when not JSON). */
export async function readRequestJson(request: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  for await (const chunk of request) parts.push(chunk as Buffer);
  const text = Buffer.concat(parts).toString("utf8");
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return INVALID_JSON;
  }
}
export const INVALID_JSON = Symbol("invalid JSON");

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

export const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

import type { GenerationInfo } from "../image/index.js";

/** Which file of the layout: the version's own, a converted variant, a .ckpt twin, the VAE. */
export type PublishedRole = "original" | "fp16-pruned" | "fp32-full" | "ckpt" | "vae";

/** The six hashes as Civitai names them (DOMAIN.md §5), of the file as written. */
export interface CivitaiFileHashes {
  AutoV1: string | null;
  AutoV2: string;
  AutoV3: string;
  SHA256: string;
  CRC32: string;
  BLAKE3: string;
}

export interface PublishedFile {
  /** Path inside the published folder. */
  name: string;
  role: PublishedRole;
  /** What it was copied or converted from (a source path, or another published file's name). */
  from: string;
  sizeBytes: number;
  /** Civitai's files[].type and files[].metadata. */
  type: string | null;
  metadata: { fp: string | null; size: string | null; format: string | null };
  hashes: CivitaiFileHashes;
}

export interface PublishedImage {
  /** Path inside the published folder (images/…). */
  name: string;
  from: string;
  width: number | null;
  height: number | null;
  generation: GenerationInfo | null;
}

/** What `gyoza publish` laid out, as `--json` prints it. */
export interface PublishManifest {
  dir: string;
  model: string;
  version: string;
  files: PublishedFile[];
  images: PublishedImage[];
  /** Paths inside the folder of recipes/*.yaml. */
  recipes: string[];
  readme: string;
  civitai: string;
  /** What could not be laid out and why (a VAE named but not at hand, an image without metadata). */
  notes?: string[];
}

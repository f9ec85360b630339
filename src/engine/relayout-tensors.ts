import type { Detection } from "../arch/detect.js";
import {
  type ConvertedKey,
  findLayoutConversion,
  LAYOUT_TARGETS,
  type LayoutConversion,
  planLayoutConversion,
} from "../arch/layout-conversion.js";
import { freshPositionIds } from "../arch/position-ids.js";
import { didYouMean, GyozaError } from "../errors.js";
import { SliceByteSource } from "../io/byte-source.js";
import { ConcatByteSource } from "../io/concat-byte-source.js";
import { contiguousStrides, isContiguous } from "../io/read-tensor.js";
import type { StoredTensor } from "../io/tensor.js";

/** What a key layout conversion did, for the convert summary and `--json`. */
export interface RelayoutReport {
  /** Reference layouts, e.g. "sd1-kohya" → "sd1-ldm". */
  from: string;
  to: string;
  /** Keys only renamed. */
  renamed: number;
  /** Target keys whose tensor changed shape (same bytes): 2-D linear weights made 1x1 convolutions. */
  reshaped: string[];
  /** Target keys whose matrix was transposed. */
  transposed: string[];
  /** Target keys joined from several source tensors (q, k, v → in_proj). */
  joined: string[];
  /** Target keys the source lacked, filled in (CLIP position_ids as arange(77)). */
  added: string[];
}

/**
 * The state dict in the `target` key layout ("ldm"), described without reading a byte: each tensor
 * a view of its source (renamed, reshaped, transposed by strides, or joined from parts end to end).
 * Returns undefined when the checkpoint already is in that layout.
 */
export function relayoutTensors(
  tensors: ReadonlyMap<string, StoredTensor>,
  detection: Detection,
  target: string,
  file: string,
): { tensors: Map<string, StoredTensor>; report: RelayoutReport } | undefined {
  const accepted = LAYOUT_TARGETS[target];
  if (!accepted) {
    const guess = didYouMean(target, Object.keys(LAYOUT_TARGETS));
    throw new GyozaError("unknown-id", `no key layout "${target}"`, {
      fix: guess
        ? `did you mean --layout ${guess}?`
        : `use --layout ${Object.keys(LAYOUT_TARGETS).join(" | ")}`,
    });
  }
  if (detection.keyLayout && accepted.includes(detection.keyLayout)) return undefined;
  const conversion = findLayoutConversion(detection.spec?.layout, target);
  if (!conversion) {
    const what =
      detection.id === "unknown"
        ? "a file of unknown architecture"
        : `${detection.name} with ${detection.keyLayout ?? "other"} key names`;
    throw new GyozaError("usage", `no conversion to the ${target} layout for ${what}`, {
      file,
      fix: "--layout converts the kohya layouts of SD 1.x and SDXL; gyoza inspect says what this file is",
    });
  }
  return applyConversion(tensors, conversion, file);
}

function applyConversion(
  tensors: ReadonlyMap<string, StoredTensor>,
  conversion: LayoutConversion,
  file: string,
): { tensors: Map<string, StoredTensor>; report: RelayoutReport } {
  const report: RelayoutReport = {
    from: conversion.from,
    to: conversion.to,
    renamed: 0,
    reshaped: [],
    transposed: [],
    joined: [],
    added: [],
  };
  const result = new Map<string, StoredTensor>();
  for (const planned of planLayoutConversion(tensors, conversion, file)) {
    result.set(planned.key, viewOf(planned, tensors, file));
    if (planned.op === "rename") report.renamed++;
    else if (planned.op === "linear-to-conv") report.reshaped.push(planned.key);
    else if (planned.op === "transpose") report.transposed.push(planned.key);
    else if (planned.op === "concat") report.joined.push(planned.key);
    else report.added.push(planned.key);
  }
  return { tensors: result, report };
}

/** The converted tensor as a view of its source bytes. */
function viewOf(
  planned: ConvertedKey,
  tensors: ReadonlyMap<string, StoredTensor>,
  file: string,
): StoredTensor {
  const sources = planned.sources.map((key) => tensors.get(key)!);
  const source = sources[0];
  switch (planned.op) {
    case "fill":
      return freshPositionIds(planned.key);
    case "rename":
      return { ...source!, key: planned.key };
    case "linear-to-conv":
      // two trailing axes of size 1: the same bytes in the same order
      return {
        ...source!,
        key: planned.key,
        shape: planned.shape,
        strides: source!.strides ? [...source!.strides, 1, 1] : null,
      };
    case "transpose": {
      const strides = source!.strides ?? contiguousStrides(source!.shape);
      return { ...source!, key: planned.key, shape: planned.shape, strides: [...strides].reverse() };
    }
    case "concat": {
      const parts = sources.map((part) => {
        if (part.strides && !isContiguous(part.shape, part.strides)) {
          throw new GyozaError(
            "format",
            `${part.key} is a strided view and cannot be joined into ${planned.key}`,
            {
              file,
              fix: "convert the file to safetensors first (gyoza convert in out.safetensors), then change its layout",
            },
          );
        }
        return new SliceByteSource(part.source, part.byteOffset, part.byteLength);
      });
      const bytes = sources.reduce((total, part) => total + part.byteLength, 0);
      return {
        key: planned.key,
        dtype: source!.dtype,
        shape: planned.shape,
        source: new ConcatByteSource(parts, file),
        byteOffset: 0,
        strides: null,
        byteLength: bytes,
      };
    }
  }
}

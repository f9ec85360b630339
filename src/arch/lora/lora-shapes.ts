import { elementCount } from "../../io/dtype.js";
import type { LoraModule } from "./lora-modules.js";

/** Something wrong or notable about a LoRA file, naming the module it concerns. */
export interface LoraIssue {
  severity: "error" | "warning";
  code:
    | "missing-part" // a module lacks its up or down (or another required) tensor
    | "rank-mismatch" // up and down disagree on the rank
    | "shape-mismatch" // the parts of a module do not fit together
    | "alpha-missing" // no alpha: kohya's convention takes it as the rank
    | "alpha-invalid" // alpha is not one finite number
    | "no-target" // no key of the base model's layout is named by the module
    | "target-shape" // the module's delta does not have the target's shape
    | "unsupported" // recognised, but its weight change is not computed here
    | "unknown-keys" // keys that belong to no module
    | "base-conflict"; // the evidence points at more than one base model
  module?: string;
  message: string;
}

/** What a module's tensor shapes say: its rank and the shape of the weight change it adds. */
export interface ModuleShape {
  /** The low-rank dimension; null for full-rank parts (LoKr w2 stored whole, full diffs). */
  rank: number | null;
  /** Shape of the weight delta: [out, in] (linear) or [out, in, kh, kw] (convolution); LoHa/LoKr
   * convolutions without a Tucker core give the 2-D view [out, in·kh·kw]. Null when it cannot be told. */
  deltaShape: number[] | null;
  issues: LoraIssue[];
}

/** Rank and delta shape of a module, with what is wrong with its parts (headers only). */
export function moduleShape(module: LoraModule): ModuleShape {
  const issues: LoraIssue[] = [];
  const fail = (code: LoraIssue["code"], message: string): ModuleShape => {
    issues.push({ severity: "error", code, module: module.name, message: `${module.name}: ${message}` });
    return { rank: null, deltaShape: null, issues };
  };
  const alpha = module.tensors.get("alpha");
  if (alpha && elementCount(alpha.shape) !== 1) {
    issues.push({
      severity: "error",
      code: "alpha-invalid",
      module: module.name,
      message: `${module.name}: alpha has shape [${alpha.shape}], not one number`,
    });
  }
  const shape = (role: string) => module.tensors.get(role)?.shape;
  switch (module.algorithm) {
    case "lora":
      return loraShape(shape, fail, issues);
    case "loha":
      return lohaShape(shape, fail, issues);
    case "lokr":
      return lokrShape(shape, fail, issues);
    case "full": {
      const diff = shape("diff")!;
      return { rank: null, deltaShape: [...diff], issues };
    }
    default:
      issues.push({
        severity: "warning",
        code: "unsupported",
        module: module.name,
        message: `${module.name}: a LyCORIS module of another kind (${[...module.tensors.keys()].join(", ")}): recognised, its weight change is not computed`,
      });
      return { rank: null, deltaShape: null, issues };
  }
}

type ShapeOf = (role: string) => readonly number[] | undefined;
type Fail = (code: LoraIssue["code"], message: string) => ModuleShape;

const show = (shape: readonly number[]) => `[${shape.join(", ")}]`;

function loraShape(shape: ShapeOf, fail: Fail, issues: LoraIssue[]): ModuleShape {
  const up = shape("up");
  const down = shape("down");
  if (!up || !down)
    return fail("missing-part", `has ${up ? "an up" : "a down"} weight but no ${up ? "down" : "up"}`);
  if (![2, 4].includes(up.length) || ![2, 4].includes(down.length))
    return fail("shape-mismatch", `up ${show(up)} and down ${show(down)} must be 2-D or 4-D`);
  if (up.length !== down.length) {
    return fail(
      "shape-mismatch",
      `up ${show(up)} is ${up.length}-D but down ${show(down)} is ${down.length}-D: one is a linear layer, the other a convolution`,
    );
  }
  if (up.length === 4 && (up[2] !== 1 || up[3] !== 1))
    return fail("shape-mismatch", `up ${show(up)} must be a 1x1 convolution`);
  if (up[1] !== down[0]) {
    return fail(
      "rank-mismatch",
      `up ${show(up)} has rank ${up[1]} but down ${show(down)} has rank ${down[0]}`,
    );
  }
  const mid = shape("mid");
  if (mid) {
    // LyCORIS LoCon with a Tucker core: down [r, in, 1, 1], mid [r, r, kh, kw], up [out, r, 1, 1]
    if (mid.length !== 4 || mid[0] !== down[0] || mid[1] !== up[1])
      return fail("shape-mismatch", `mid ${show(mid)} does not join down ${show(down)} and up ${show(up)}`);
    return { rank: down[0]!, deltaShape: [up[0]!, down[1]!, mid[2]!, mid[3]!], issues };
  }
  return { rank: down[0]!, deltaShape: [up[0]!, ...down.slice(1)], issues };
}

/** LyCORIS LoHa: (w1_a @ w1_b) ⊙ (w2_a @ w2_b), or with Tucker cores t1/t2 [r, r, kh, kw]. */
function lohaShape(shape: ShapeOf, fail: Fail, issues: LoraIssue[]): ModuleShape {
  const parts = ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"].map(shape);
  const missing = ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"].filter((_, i) => !parts[i]);
  if (missing.length > 0) return fail("missing-part", `LoHa module lacks ${missing.join(", ")}`);
  const [w1a, w1b, w2a, w2b] = parts as (readonly number[])[];
  if ([w1a, w1b, w2a, w2b].some((s) => s!.length !== 2))
    return fail("shape-mismatch", "LoHa factors must be 2-D matrices");
  const t1 = shape("hada_t1");
  if (t1) {
    // Tucker form: w_a [r, out], w_b [r, in], t [r, r, kh, kw]
    if (w1a![1] !== w2a![1] || w1b![1] !== w2b![1] || t1.length !== 4)
      return fail("shape-mismatch", `LoHa Tucker factors disagree (w1_a ${show(w1a!)}, w2_a ${show(w2a!)})`);
    return { rank: w1b![0]!, deltaShape: [w1a![1]!, w1b![1]!, t1[2]!, t1[3]!], issues };
  }
  if (w1a![1] !== w1b![0] || w2a![1] !== w2b![0]) {
    return fail(
      "rank-mismatch",
      `LoHa w1_a ${show(w1a!)} / w1_b ${show(w1b!)} or w2_a ${show(w2a!)} / w2_b ${show(w2b!)} disagree on the rank`,
    );
  }
  if (w1a![0] !== w2a![0] || w1b![1] !== w2b![1])
    return fail(
      "shape-mismatch",
      `LoHa products w1 [${w1a![0]}, ${w1b![1]}] and w2 [${w2a![0]}, ${w2b![1]}] differ`,
    );
  return { rank: w1b![0]!, deltaShape: [w1a![0]!, w1b![1]!], issues };
}

/** LyCORIS LoKr: kron(w1, w2), each whole or factorised (w_a @ w_b), w2 optionally with a Tucker core. */
function lokrShape(shape: ShapeOf, fail: Fail, issues: LoraIssue[]): ModuleShape {
  const w1 = shape("lokr_w1");
  const w1a = shape("lokr_w1_a");
  const w1b = shape("lokr_w1_b");
  let rows1: number;
  let cols1: number;
  if (w1 && w1.length === 2) [rows1, cols1] = [w1[0]!, w1[1]!];
  else if (w1a && w1b && w1a.length === 2 && w1b.length === 2 && w1a[1] === w1b[0])
    [rows1, cols1] = [w1a[0]!, w1b[1]!];
  else return fail("missing-part", "LoKr module lacks a usable w1 (lokr_w1, or lokr_w1_a with lokr_w1_b)");
  const w2 = shape("lokr_w2");
  const w2a = shape("lokr_w2_a");
  const w2b = shape("lokr_w2_b");
  const t2 = shape("lokr_t2");
  if (w2) return { rank: null, deltaShape: [rows1 * w2[0]!, cols1 * w2[1]!, ...w2.slice(2)], issues };
  if (!w2a || !w2b || w2a.length !== 2 || w2b.length !== 2)
    return fail("missing-part", "LoKr module lacks a usable w2 (lokr_w2, or lokr_w2_a with lokr_w2_b)");
  if (t2) {
    // Tucker form: w2_a [r, b], w2_b [r, d], t2 [r, r, kh, kw]
    if (t2.length !== 4 || t2[0] !== w2a[0] || t2[1] !== w2b[0])
      return fail(
        "shape-mismatch",
        `LoKr t2 ${show(t2)} does not join w2_a ${show(w2a)} and w2_b ${show(w2b)}`,
      );
    return { rank: w2b[0]!, deltaShape: [rows1 * w2a[1]!, cols1 * w2b[1]!, t2[2]!, t2[3]!], issues };
  }
  if (w2a[1] !== w2b[0])
    return fail(
      "rank-mismatch",
      `LoKr w2_a ${show(w2a)} has rank ${w2a[1]} but w2_b ${show(w2b)} has ${w2b[0]}`,
    );
  return { rank: w2b[0]!, deltaShape: [rows1 * w2a[0]!, cols1 * w2b[1]!], issues };
}

/**
 * Whether a delta of this shape can be added to a weight of that shape: the same shape, or one is
 * the other's 2-D view ([out, in] for a 1x1 convolution, [out, in·kh·kw] for a flattened one).
 */
export function deltaFits(delta: readonly number[], target: readonly number[]): boolean {
  const same = (a: readonly number[], b: readonly number[]) =>
    a.length === b.length && a.every((dim, i) => dim === b[i]);
  if (same(delta, target)) return true;
  const view = (shape: readonly number[]) => [shape[0]!, elementCount(shape.slice(1))];
  if (delta.length === 2 && target.length === 4) return same(delta, view(target));
  if (delta.length === 4 && target.length === 2)
    return delta[2] === 1 && delta[3] === 1 && same(view(delta), target);
  return false;
}

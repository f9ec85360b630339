import { describe, expect, it } from "vitest";
import { evaluationJobId, parseEvaluationJobData } from "./types.js";

const good = {
  study: "demo-1",
  trial: 3,
  x: [0.1, 0.9],
  recipe: { steps: [] },
  inputs: [{ name: "base.safetensors", sha256: "a".repeat(64) }],
  objective: { kind: "weight-space", target: [0.5, 0.5] },
};

describe("evaluation job data from Redis", () => {
  it("accepts a well-formed job", () => {
    expect(parseEvaluationJobData(good)).toEqual(good);
  });

  it("refuses an input name that climbs out of the inputs folder", () => {
    for (const name of ["../base.safetensors", "sub/base.safetensors", "..", "a\\b", ""])
      expect(() => parseEvaluationJobData({ ...good, inputs: [{ name, sha256: "a".repeat(64) }] })).toThrow(
        /input name/,
      );
  });

  it("refuses a sha256 that is not 64 hex digits", () => {
    expect(() => parseEvaluationJobData({ ...good, inputs: [{ name: "b", sha256: "xyz" }] })).toThrow(
      /input sha256/,
    );
  });

  it("refuses a candidate point with a non-number, an infinity or no values", () => {
    for (const x of [[0.1, "0.2"], [Number.POSITIVE_INFINITY], [], "0.1"])
      expect(() => parseEvaluationJobData({ ...good, x })).toThrow(/candidate point/);
  });

  it("refuses a study id that could not be part of a job id", () => {
    for (const study of ["a:b", "", "a b", "x".repeat(101)])
      expect(() => parseEvaluationJobData({ ...good, study })).toThrow(/study id/);
  });

  it("refuses a negative or fractional trial number and an unknown objective", () => {
    expect(() => parseEvaluationJobData({ ...good, trial: -1 })).toThrow(/trial number/);
    expect(() => parseEvaluationJobData({ ...good, trial: 1.5 })).toThrow(/trial number/);
    expect(() => parseEvaluationJobData({ ...good, objective: { kind: "shell", command: "rm" } })).toThrow(
      /objective/,
    );
  });

  it("names jobs study#trial (BullMQ refuses ':' in job ids)", () => {
    expect(evaluationJobId("demo-1", 3)).toBe("demo-1#3");
  });
});

import { describe, expect, it } from "vitest";
import { evaluationJobId, parseEvaluationJobData, parseResultDetail } from "./types.js";

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

  const target = { name: "target.safetensors", sha256: "b".repeat(64) };
  const study = {
    ...good,
    inputs: [...good.inputs, target],
    objective: {
      kind: "study",
      images: { prompts: ["a bowl of gyoza"], seeds: [1, 2], steps: 4 },
      scorers: [
        {
          type: "weights",
          name: "like",
          weight: 1,
          tally: "mean",
          target: target.name,
          target_sha256: target.sha256,
        },
        { type: "http", name: "bright", weight: 0.1, tally: "mean", url: "stand-in" },
      ],
    },
  };

  it("accepts a study objective whose scorer files are among the inputs", () => {
    expect(parseEvaluationJobData(study).objective).toEqual(study.objective);
  });

  it("refuses a study objective whose scorer reads a file that is not an input, or a path", () => {
    const scorers = (target: string, sha256 = "b".repeat(64)) => ({
      ...study,
      objective: {
        ...study.objective,
        scorers: [{ type: "weights", name: "like", weight: 1, tally: "mean", target, target_sha256: sha256 }],
      },
    });
    expect(() => parseEvaluationJobData(scorers("other.safetensors"))).toThrow(/not among the job's inputs/);
    expect(() => parseEvaluationJobData(scorers("target.safetensors", "c".repeat(64)))).toThrow(
      /not among the job's inputs/,
    );
    expect(() => parseEvaluationJobData(scorers("../../etc/passwd"))).toThrow(/objective/);
  });

  it("refuses an HTTP scorer URL that is not http(s), and an image scorer without images", () => {
    const http = (url: string) => ({ type: "http", name: "x", weight: 1, tally: "mean", url });
    for (const url of ["file:///etc/passwd", "gopher://x", ""])
      expect(() =>
        parseEvaluationJobData({ ...study, objective: { ...study.objective, scorers: [http(url)] } }),
      ).toThrow(/objective/);
    expect(() =>
      parseEvaluationJobData({ ...study, objective: { kind: "study", scorers: [http("stand-in")] } }),
    ).toThrow(/needs images/);
  });

  it("refuses a study objective asking for more images than a job may render", () => {
    const images = { prompts: Array(40).fill("p"), seeds: [...Array(40).keys()] };
    expect(() => parseEvaluationJobData({ ...study, objective: { ...study.objective, images } })).toThrow(
      /images per candidate/,
    );
  });

  it("keeps only a well-formed result detail from a worker's return value", () => {
    expect(
      parseResultDetail({ score: 1, images: [{ prompt: "p", seed: 1 }], timings: { total: 2 }, junk: "x" }),
    ).toEqual({ images: [{ prompt: "p", seed: 1 }], timings: { total: 2 } });
    expect(parseResultDetail({ score: 1, images: "many" })).toBeUndefined();
    expect(parseResultDetail({ score: 1 })).toBeUndefined();
    expect(parseResultDetail(null)).toBeUndefined();
  });
});

/**
 * Automix scorers (issue #24): plugins behind one interface. An image scorer gives one number per
 * generated image (an HTTP aesthetic/ImageReward server, an ONNX model file); a weight-space scorer
 * looks at the merged candidate file itself and gives one number (no images, fast, deterministic).
 * Higher is better; a tally (tally.ts) folds a scorer's numbers into the objective's score.
 */

/** One generated image as an image scorer receives it. */
export interface ScorerImage {
  readonly png: Buffer;
  readonly prompt: string;
  readonly seed: number;
}

export interface ScoreOptions {
  readonly signal?: AbortSignal;
  /**
   * The trial being scored, when the study loop knows it (runStudy does). Most scorers need only
   * the images or the file; a manual scorer asks a person to rate *this* trial of *this* study and
   * shows the image files the study kept, so it needs who the trial is.
   */
  readonly trial?: TrialIdentity;
}

export interface TrialIdentity {
  /** The study's name in the library. */
  readonly study: string;
  readonly number: number;
  /** The trial's point (recorded with a pending trial). */
  readonly x: readonly number[];
  /** The image files kept for the trial (images.out), in the order of the scorer's images; null when not kept. */
  readonly images: readonly { path: string; prompt: string; seed: number }[] | null;
}

export interface ImageScorer {
  readonly name: string;
  readonly kind: "images";
  /** One score per image, in order. */
  score(images: readonly ScorerImage[], options?: ScoreOptions): Promise<number[]>;
  close?(): Promise<void>;
}

/** The candidate as a weight-space scorer sees it: the merged file. */
export interface CandidateModel {
  readonly path: string;
}

export interface WeightScorer {
  readonly name: string;
  readonly kind: "weights";
  /** One score for the candidate (as a one-element array, so every scorer tallies alike). */
  score(candidate: CandidateModel, options?: ScoreOptions): Promise<number[]>;
  close?(): Promise<void>;
}

export type Scorer = ImageScorer | WeightScorer;

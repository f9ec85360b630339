import { openCheckpoint } from "../io/open-checkpoint.js";
import type { Checkpoint } from "../io/tensor.js";

/** Opens every file (headers only), runs `use`, and closes them all whatever happens. */
export async function withCheckpoints<T>(
  paths: readonly string[],
  use: (checkpoints: Checkpoint[]) => Promise<T>,
): Promise<T> {
  const opened: Checkpoint[] = [];
  try {
    for (const path of paths) opened.push(await openCheckpoint(path));
    return await use(opened);
  } finally {
    await Promise.all(opened.map((checkpoint) => checkpoint.close()));
  }
}

import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { hashFile, inspectCheckpoint, isGyozaError, loadRecipe, openCheckpoint, runRecipe } from "gyoza";

// What is this file? No pickle is executed; only headers and a few tiny tensors are read.
const checkpoint = await openCheckpoint("models/anime-detail.safetensors");
try {
  const report = await inspectCheckpoint(checkpoint);
  console.log(`${report.architecture.name}, ${report.parameters} parameters, ${report.format}`);
} finally {
  await checkpoint.close();
}

// Run a recipe with a progress callback, and stop it cleanly on Ctrl-C.
const recipePath = "gyozamix.yaml";
const recipe = loadRecipe(await readFile(recipePath, "utf8"), { sourceName: recipePath });
const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
let total = 0;
let written = 0;
try {
  const result = await runRecipe(recipe, {
    baseDir: dirname(recipePath), // the recipe's relative paths are relative to its folder
    signal: stop.signal,
    onProgress: (event) => {
      if (event.type === "start") total = event.totalBytes;
      if (event.type !== "advance") return;
      written += event.bytes;
      process.stderr.write(`\r${Math.round((100 * written) / total)} %`);
    },
  });
  console.log(`\nwrote ${result.output}: ${result.tensors} tensors, ${result.bytes} bytes`);
  // The hashes Civitai and the web UIs show (cached by path, size and modification time).
  const hashes = await hashFile(result.output);
  console.log(`SHA256 ${hashes.sha256}, AutoV2 ${hashes.autoV2}, AutoV3 ${hashes.autoV3}`);
} catch (error) {
  if (!isGyozaError(error)) throw error;
  // error.code is stable ("interrupted", "io", "recipe", …); describe() adds the file and a fix
  console.error(error.code === "interrupted" ? "stopped: nothing was written" : error.describe());
  process.exitCode = 1;
}

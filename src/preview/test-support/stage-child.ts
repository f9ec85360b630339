/**
 * A separate gyoza process for the staging-lock test: stages one recipe into a folder and prints
 * the StagedCandidate as JSON (lock log lines go to stderr).
 * Usage: node --import tsx stage-child.ts FOLDER RECIPE.json
 */
import { readFile } from "node:fs/promises";
import { recipeFromData } from "../../recipe/index.js";
import { stageCandidate } from "../stage-candidate.js";
import { FolderBackend } from "./folder-backend.js";

const [folder, recipeFile] = process.argv.slice(2);
const recipe = recipeFromData(JSON.parse(await readFile(recipeFile!, "utf8")), { sourceName: recipeFile! });
const staged = await stageCandidate({
  recipe,
  backend: new FolderBackend(folder!),
  hashCacheDir: false,
  listDelayMs: 1,
  onLog: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(`${JSON.stringify(staged)}\n`);

import type { Command } from "commander";
import { registerAutomix } from "./automix.js";
import { registerCivitai } from "./civitai.js";
import { registerConvert } from "./convert.js";
import { registerDiff } from "./diff.js";
import { registerGrid } from "./grid.js";
import { registerHash } from "./hash.js";
import { registerImage } from "./image.js";
import { registerInspect } from "./inspect.js";
import { registerLibrary } from "./library.js";
import { registerLineage } from "./lineage.js";
import { registerMerge } from "./merge.js";
import { registerPage } from "./page.js";
import { registerParents } from "./parents.js";
import { registerPresets } from "./presets.js";
import { registerPublish } from "./publish.js";
import { registerRecipe } from "./recipe.js";
import { registerRecover } from "./recover.js";
import { registerReplay } from "./replay.js";
import { registerSample } from "./sample.js";
import { registerServe } from "./serve.js";
import { registerSynth } from "./synth.js";
import { registerWorker } from "./worker.js";

/** Every CLI command registers itself here: one file per command (or command group). */
export function registerCommands(program: Command): void {
  registerInspect(program);
  registerConvert(program);
  registerMerge(program);
  registerSynth(program);
  registerHash(program);
  registerImage(program);
  registerPresets(program);
  registerReplay(program);
  registerLineage(program);
  registerRecipe(program);
  registerDiff(program);
  registerRecover(program);
  registerParents(program);
  registerLibrary(program);
  registerPage(program);
  registerCivitai(program);
  registerPublish(program);
  registerServe(program);
  registerGrid(program);
  registerSample(program);
  registerWorker(program);
  registerAutomix(program);
}

// Writes the inputs of the LoRA bakes cross-checked against torch (src/engine/test-support/lora-bake-cases.ts):
// synthetic models, LoRAs and cases.json, into the folder given. scripts/bake-lora-torch.py then computes
// the expected results (see test/fixtures/lora-bake/README.md).
import { mkdir } from "node:fs/promises";
import { writeLoraBakeInputs } from "../src/engine/test-support/lora-bake-cases.js";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: npx tsx scripts/write-lora-bake-inputs.ts DIR");
  process.exit(2);
}
await mkdir(dir, { recursive: true });
await writeLoraBakeInputs(dir);
console.log(`wrote the LoRA bake inputs into ${dir}`);

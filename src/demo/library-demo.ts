import { resolve } from "node:path";
import { progressBar } from "../cli/progress-bar.js";
import { buildDemoLibrary } from "./build-demo-library.js";

/**
 * `npm run demo:library [DIR]`: builds the demo library (synthetic models, GyozaMix v1 and v2
 * merges, sample images naming their hashes), groups the merges into one model and writes its
 * model page. Everything lands in ./demo-library (or DIR); open the printed page in a browser.
 */
async function main(): Promise<void> {
  const dir = resolve(process.argv[2] ?? "demo-library");
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`gyoza library demo in ${dir}`);
  const started = performance.now();
  const demo = await buildDemoLibrary(dir, { say: (line) => say(`  ${line}`), onProgress: progressBar() });
  say(
    `\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s. Open the model page:\n  file://${demo.page.page}`,
  );
  say(
    `or rebuild it from the library: gyoza page ${"GyozaMix"} --library ${demo.libraryPath} -o ${dir}/page --replace`,
  );
}

main().catch((error) => {
  process.stderr.write(
    `demo failed: ${error instanceof Error ? ((error as { describe?: () => string }).describe?.() ?? error.stack) : String(error)}\n`,
  );
  process.exitCode = 1;
});

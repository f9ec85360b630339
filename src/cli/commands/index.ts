import type { Command } from "commander";

type Register = (program: Command) => void;

/**
 * Every CLI command, one file per command (or command group), in the order `gyoza --help` lists
 * them. Each is imported only when needed: `gyoza merge …` loads the merge command and what it
 * imports, not the web server, the automix optimizers or the image generators (the bundled bin
 * splits them into chunks, scripts/bundle-cli.mjs), which saves every command most of the start-up
 * spent compiling code it never runs.
 */
const COMMANDS: readonly (readonly [name: string, load: () => Promise<Register>])[] = [
  ["inspect", async () => (await import("./inspect.js")).registerInspect],
  ["convert", async () => (await import("./convert.js")).registerConvert],
  ["merge", async () => (await import("./merge.js")).registerMerge],
  ["synth", async () => (await import("./synth.js")).registerSynth],
  ["hash", async () => (await import("./hash.js")).registerHash],
  ["image", async () => (await import("./image.js")).registerImage],
  ["presets", async () => (await import("./presets.js")).registerPresets],
  ["replay", async () => (await import("./replay.js")).registerReplay],
  ["lineage", async () => (await import("./lineage.js")).registerLineage],
  ["recipe", async () => (await import("./recipe.js")).registerRecipe],
  ["diff", async () => (await import("./diff.js")).registerDiff],
  ["recover", async () => (await import("./recover.js")).registerRecover],
  ["parents", async () => (await import("./parents.js")).registerParents],
  ["library", async () => (await import("./library.js")).registerLibrary],
  ["page", async () => (await import("./page.js")).registerPage],
  ["civitai", async () => (await import("./civitai.js")).registerCivitai],
  ["publish", async () => (await import("./publish.js")).registerPublish],
  ["serve", async () => (await import("./serve.js")).registerServe],
  ["backend", async () => (await import("./backend.js")).registerBackend],
  ["grid", async () => (await import("./grid.js")).registerGrid],
  ["sample", async () => (await import("./sample.js")).registerSample],
  ["worker", async () => (await import("./worker.js")).registerWorker],
  ["automix", async () => (await import("./automix.js")).registerAutomix],
];

/** The names of every command, in `gyoza --help` order. */
export const COMMAND_NAMES: readonly string[] = COMMANDS.map(([name]) => name);

/**
 * Registers the command `argv` runs (node-style: argv[0] node, argv[1] the script), or every command
 * where it names none of them: `gyoza`, `gyoza --help`, `gyoza help merge`, a misspelt command (so the
 * usage error can suggest the right one); none for `gyoza --version`. The program's only options
 * are --help and --version, so a command is always the first argument.
 */
export async function registerCommands(program: Command, argv: readonly string[] = []): Promise<void> {
  const args = argv.slice(2);
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) return; // needs no command
  const one = COMMANDS.filter(([command]) => command === args[0]);
  const registers = await Promise.all((one.length > 0 ? one : COMMANDS).map(([, load]) => load()));
  for (const register of registers) register(program);
}

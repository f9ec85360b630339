import { unlinkSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { isGyozaError } from "../errors.js";
import { removePendingTempFilesSync } from "../io/atomic-file.js";
import { registerCommands } from "./commands/index.js";

const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;
export const EXIT_INTERRUPTED = 130;

export function cleanUpAndExit(code: number): never {
  removePendingTempFilesSync(unlinkSync);
  process.exit(code);
}

/** Runs the CLI on `argv` (node-style: argv[0] node, argv[1] script) and returns the exit code; never exits. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command("gyoza")
    .description("Fast, safe, reproducible Stable Diffusion checkpoint mixing")
    .version(process.env.npm_package_version ?? "0.1.0")
    .showHelpAfterError()
    .exitOverride();
  try {
    await registerCommands(program, argv);
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    if (isGyozaError(error)) {
      process.stderr.write(`gyoza: ${error.describe()}\n`);
      return error.code === "usage" || error.code === "unknown-id" ? EXIT_USAGE : EXIT_FAILURE;
    }
    process.stderr.write(`gyoza: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
    return EXIT_FAILURE;
  }
}

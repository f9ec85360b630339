#!/usr/bin/env node
import { cleanUpAndExit, EXIT_INTERRUPTED, main } from "./run.js";

process.on("SIGINT", () => {
  process.stderr.write("\ngyoza: interrupted; partial output removed\n");
  cleanUpAndExit(EXIT_INTERRUPTED);
});
process.on("SIGTERM", () => cleanUpAndExit(143));

main(process.argv).then((code) => cleanUpAndExit(code));

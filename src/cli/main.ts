#!/usr/bin/env node
import { cleanUpAndExit, EXIT_INTERRUPTED, main } from "./run.js";

process.on("SIGINT", () => {
  process.stderr.write("\ngyoza: interrupted; partial output removed\n");
  cleanUpAndExit(EXIT_INTERRUPTED);
});
process.on("SIGTERM", () => cleanUpAndExit(143));

// Exit only once stdout and stderr are flushed: on a pipe, process.exit() would cut a long --json off.
main(process.argv).then((code) =>
  process.stdout.write("", () => process.stderr.write("", () => cleanUpAndExit(code))),
);

import type { Command } from "commander";
import { defaultLibraryPath } from "../../library/index.js";
import { collectFlag, integerFlag } from "../flags.js";

interface ServeFlags {
  library?: string;
  models?: string[];
  host: string;
  port: number;
  token?: string;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description(
      "the local mixing lab in the browser: library, merge builder with block-weight curves, live merges, diff and recovery (JSON API under /api)",
    )
    .option("--library <file>", "the library database (default: the user's library)")
    .option(
      "--models <dir>",
      "a folder of models requests may name besides the library's (repeatable)",
      collectFlag,
    )
    .option("--host <host>", "address to listen on (anything but loopback needs --token)", "127.0.0.1")
    .option("--port <n>", "port (0: any free one)", integerFlag("--port", 0, 65535), 7870)
    .option("--token <token>", "the API token (default: a random one, printed in the start URL)")
    .action(async (flags: ServeFlags) => {
      // Loaded here, not at start: the server (Fastify) costs every other command nothing.
      const { createServer } = await import("../../server/create-server.js");
      const server = await createServer({
        library: flags.library ?? defaultLibraryPath(),
        roots: flags.models ?? [],
        host: flags.host,
        port: flags.port,
        ...(flags.token !== undefined ? { token: flags.token } : {}),
      });
      const url = await server.listen();
      process.stdout.write(`gyoza serve: ${url}\n`);
      process.stderr.write(
        "open the URL in a browser; Ctrl-C stops (a running merge is cancelled, no partial file kept)\n",
      );
      // Runs until the process is interrupted: the CLI's SIGINT handler removes a running merge's temp file.
      await new Promise<void>((resolve) => server.app.server.once("close", () => resolve()));
    });
}

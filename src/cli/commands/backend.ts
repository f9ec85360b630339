import type { Command } from "commander";
import { createBackend, loadGyozaConfig, pickBackend } from "../../backends/index.js";
import type { BackendCheck } from "../../backends/types.js";
import { printJson } from "../output.js";

interface BackendFlags {
  backend?: string;
  config?: string;
  all?: boolean;
  json?: boolean;
}

export function registerBackend(program: Command): void {
  const backend = program
    .command("backend")
    .description("the generation backends in gyoza.yaml (ComfyUI, A1111/Forge) that sample and grid drive");

  backend
    .command("list")
    .description("the configured backends: name, kind, URL, model folder (and which config file)")
    .option(
      "--config <path>",
      "the config file (default: $GYOZA_CONFIG, ./gyoza.yaml, ~/.config/gyoza/gyoza.yaml)",
    )
    .option("--json", "print the list as JSON")
    .action(async (flags: BackendFlags) => {
      const config = await loadGyozaConfig(flags.config ? { path: flags.config } : {});
      if (flags.json) {
        printJson({
          file: config.file,
          defaultBackend: config.defaultBackend ?? null,
          backends: config.backends.map(({ headers, ...rest }) => ({
            ...rest,
            headers: Object.keys(headers),
          })),
        });
        return;
      }
      const lines = [`config: ${config.file}`];
      for (const entry of config.backends) {
        const mark = entry.name === config.defaultBackend ? " (default)" : "";
        lines.push(
          `${entry.name}${mark}: ${entry.kind} at ${entry.url}, model folder ${entry.modelFolder}${
            entry.modelPrefix ? ` (listed under ${entry.modelPrefix}/)` : ""
          }, timeout ${entry.timeoutSeconds} s`,
        );
      }
      process.stdout.write(`${lines.join("\n")}\n`);
    });

  backend
    .command("check")
    .description(
      "what works: the backend answers (version), lists checkpoints and samplers, and sees a probe file written into its model folder",
    )
    .option("--backend <name>", "the backend to check (default: default_backend, or the only one)")
    .option("--all", "check every configured backend")
    .option(
      "--config <path>",
      "the config file (default: $GYOZA_CONFIG, ./gyoza.yaml, ~/.config/gyoza/gyoza.yaml)",
    )
    .option("--json", "print the checks as JSON")
    .action(async (flags: BackendFlags) => {
      const config = await loadGyozaConfig(flags.config ? { path: flags.config } : {});
      const targets = flags.all ? config.backends : [pickBackend(config, flags.backend)];
      const results: BackendCheck[] = [];
      for (const target of targets) {
        if (!flags.json && process.stderr.isTTY)
          process.stderr.write(`checking ${target.name} (${target.url})…\n`);
        results.push(await createBackend(target).check());
      }
      if (flags.json) printJson(flags.all ? results : results[0]);
      else process.stdout.write(results.map(formatCheck).join("\n"));
      if (results.some((result) => !result.ok)) process.exitCode = 1;
    });
}

/** The check as lines: ✓/✗ per item, details indented (fix lines included). */
export function formatCheck(result: BackendCheck): string {
  const lines = [`${result.backend}: ${result.ok ? "ok" : "NOT OK"}`];
  for (const item of result.items) {
    const [first, ...rest] = item.detail.split("\n");
    lines.push(`  ${item.ok ? "ok  " : "FAIL"} ${item.check}: ${first}`);
    for (const line of rest) lines.push(`       ${line}`);
  }
  return `${lines.join("\n")}\n`;
}

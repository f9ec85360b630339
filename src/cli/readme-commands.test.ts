import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runCli } from "../test-support/run-cli.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

/** The `gyoza …` lines of the README's Quick start block. */
function quickStartLines(): string[] {
  const section = readme.slice(readme.indexOf("## Quick start"));
  const block = section.slice(
    section.indexOf("```sh") + 5,
    section.indexOf("```", section.indexOf("```sh") + 5),
  );
  return block
    .split("\n")
    .map((line) => line.replace(/#.*$/, "").trim())
    .filter((line) => line.startsWith("gyoza "));
}

/** `gyoza image info x` → ["image", "info"]: the words before the first file or flag. */
function commandWords(line: string): string[] {
  const words = line.split(/\s+/).slice(1);
  const command = [words[0]!];
  if (["image", "recipe", "automix"].includes(words[0]!) && words[1] && !words[1].includes("."))
    command.push(words[1]);
  return command;
}

describe("the README's quick start", () => {
  const lines = quickStartLines();

  it("has commands to check", () => {
    expect(lines.length).toBeGreaterThan(10);
  });

  it.each(lines)("uses only flags that `--help` lists: %s", async (line) => {
    const command = commandWords(line);
    const help = await runCli(...command, "--help");
    expect(help.code, help.stderr).toBe(0);
    for (const flag of line.match(/(?<=\s)--?[a-z][a-z0-9-]*/g) ?? [])
      expect(help.stdout, `${line}: ${flag}`).toContain(flag);
  });

  it("names every command the CLI has", async () => {
    const help = await runCli("--help");
    const commands = [...help.stdout.matchAll(/^ {2}([a-z]+)\b/gm)]
      .map((m) => m[1]!)
      .filter((c) => c !== "help");
    const documented = new Set(lines.map((line) => commandWords(line)[0]));
    for (const command of commands) expect(documented, command).toContain(command);
  });
});

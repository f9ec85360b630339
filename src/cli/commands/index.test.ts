import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { COMMAND_NAMES, registerCommands } from "./index.js";

/** The command names a program ends up with after `registerCommands` for `args` (after `node gyoza`). */
async function registered(...args: string[]): Promise<string[]> {
  const program = new Command("gyoza");
  await registerCommands(program, ["node", "gyoza", ...args]);
  return program.commands.map((command) => command.name());
}

describe("registerCommands", () => {
  it("loads only the command a run names, and that file registers the command of its name", async () => {
    for (const name of COMMAND_NAMES) expect(await registered(name, "--json", "x")).toEqual([name]);
  });

  it("loads no command to print the version", async () => {
    expect(await registered("--version")).toEqual([]);
    expect(await registered("-V")).toEqual([]);
  });

  it("registers every command, in help order, where the arguments name none of them", async () => {
    const all = await registered();
    expect(all).toEqual(COMMAND_NAMES);
    expect(new Set(all).size).toBe(all.length);
    // so that help lists them all and a misspelling gets a suggestion
    expect(await registered("--help")).toEqual(all);
    expect(await registered("--help", "merge")).toEqual(all);
    expect(await registered("help", "merge")).toEqual(all);
    expect(await registered("mrege", "a.safetensors")).toEqual(all);
  });
});

import { readFileSync } from "node:fs";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import * as gyoza from "./index.js";

/**
 * The public API is a deliberate list: adding or removing a value export means editing this list,
 * the README's Library table and, for a new function, its TSDoc. (Type exports cost nothing at run
 * time; the installed-package test type-checks the README example against them.)
 */
const PUBLIC_VALUES = [
  "GyozaError",
  "LibraryStore",
  "addToLibrary",
  "childrenOf",
  "defaultLibraryPath",
  "findEntries",
  "groupFiles",
  "listEntries",
  "listModels",
  "modelPage",
  "openLibrary",
  "rescanLibrary",
  "setVersionFields",
  "showEntry",
  "writeLibraryModelPage",
  "writeModelPage",
  "publishVersion",
  "publishSourceFromLibrary",
  "CivitaiClient",
  "fetchCivitaiFacts",
  "createBackend",
  "loadGyozaConfig",
  "pickBackend",
  "builtinPresets",
  "copyMetadata",
  "decodeToFloat32",
  "detectGeneration",
  "diffModels",
  "findPreset",
  "hashBytes",
  "hashFile",
  "hashFiles",
  "inspectCheckpoint",
  "isGyozaError",
  "loadKernel",
  "loadRecipe",
  "openCheckpoint",
  "readMetadataOf",
  "readTensorBytes",
  "recipeFromData",
  "recoverWeights",
  "runRecipe",
  "stripMetadata",
  "textsByKey",
];

const INDEX_FILE = new URL("./index.ts", import.meta.url).pathname;
const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const EXAMPLE = readFileSync(new URL("../examples/library.ts", import.meta.url), "utf8");

/** The README's "## Library" section, up to the next section. */
function librarySection(): string {
  const start = README.indexOf("\n## Library\n");
  expect(start, "README has a Library section").toBeGreaterThan(0);
  const end = README.indexOf("\n## ", start + 1);
  return README.slice(start, end < 0 ? undefined : end);
}

/**
 * The TSDoc of every declaration `src/index.ts` re-exports by name, found by parsing the files it
 * names (a type-checked program would take seconds; re-exports are plain `export { x } from "./f.js"`).
 */
function exportedDocs(): Map<string, string> {
  const parse = (path: string) =>
    ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.ES2022, true);
  const docs = new Map<string, string>();
  for (const statement of parse(INDEX_FILE).statements) {
    if (!ts.isExportDeclaration(statement) || statement.isTypeOnly) continue;
    const from = (statement.moduleSpecifier as ts.StringLiteral).text.replace(/\.js$/, ".ts");
    const file = parse(new URL(from, new URL("./index.ts", import.meta.url)).pathname);
    for (const element of (statement.exportClause as ts.NamedExports).elements) {
      if (element.isTypeOnly) continue;
      const name = (element.propertyName ?? element.name).text;
      const declaration = topLevelDeclaration(file, name);
      const doc = declaration ? ts.getJSDocCommentsAndTags(declaration).map((d) => d.getText()) : [];
      docs.set(element.name.text, doc.join("\n"));
    }
  }
  return docs;
}

function topLevelDeclaration(file: ts.SourceFile, name: string): ts.Node | undefined {
  for (const statement of file.statements) {
    if (
      (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement)) &&
      statement.name?.text === name
    )
      return statement;
    if (ts.isVariableStatement(statement)) {
      const found = statement.declarationList.declarations.find(
        (d) => ts.isIdentifier(d.name) && d.name.text === name,
      );
      if (found) return found;
    }
  }
  return undefined;
}

describe("the public API (src/index.ts)", () => {
  it("exports exactly the deliberate list of values", () => {
    expect(Object.keys(gyoza).sort()).toEqual([...PUBLIC_VALUES].sort());
  });

  it("only re-exports: the index declares nothing of its own", () => {
    const source = ts.createSourceFile(INDEX_FILE, readFileSync(INDEX_FILE, "utf8"), ts.ScriptTarget.ES2022);
    const own = source.statements.filter((statement) => !ts.isExportDeclaration(statement));
    expect(own.map((statement) => ts.SyntaxKind[statement.kind])).toEqual([]);
  });

  it("documents every exported function, class and value with TSDoc", () => {
    const docs = exportedDocs();
    expect([...docs.keys()].sort()).toEqual([...PUBLIC_VALUES].sort());
    const undocumented = [...docs].filter(([, doc]) => doc.length < 20).map(([name]) => name);
    expect(undocumented).toEqual([]);
  });

  it("names every exported value in the README's Library section", () => {
    const section = librarySection();
    const missing = PUBLIC_VALUES.filter((name) => !new RegExp("`" + name + "[`(]").test(section));
    expect(missing).toEqual([]);
  });

  it("shows examples/library.ts verbatim in the README's Library section", () => {
    const block = /```ts\n([\s\S]*?)```/.exec(librarySection());
    expect(block?.[1]).toBe(EXAMPLE);
  });
});

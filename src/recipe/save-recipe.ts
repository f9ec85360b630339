import { Document, isScalar, visit } from "yaml";
import type { Recipe } from "./recipe-types.js";

const FIELD_ORDER = ["gyoza", "inputs", "steps", "output"] as const;

/**
 * The canonical text of a recipe: fixed top-level order, defaults written out, number vectors on
 * one line. `loadRecipe(saveRecipe(r))` deep-equals `r` for any loaded recipe.
 */
export function saveRecipe(recipe: Recipe): string {
  const ordered = Object.fromEntries(FIELD_ORDER.map((field) => [field, recipe[field]]));
  const document = new Document(ordered, { aliasDuplicateObjects: false });
  visit(document, {
    Seq(_, node) {
      if (node.items.every((item) => isScalar(item) && typeof item.value === "number")) node.flow = true;
    },
    Map(_, node) {
      // overrides read best one per line: {block: OUT04, pattern: attn2, value: 0.2}
      if (node.items.every((pair) => isScalar(pair.value)) && node.items.length <= 4) {
        const keys = node.items.map((pair) => (isScalar(pair.key) ? pair.key.value : ""));
        if (keys.includes("block") && keys.includes("pattern")) node.flow = true;
      }
    },
  });
  return document.toString({ lineWidth: 0 });
}

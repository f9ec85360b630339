import { GyozaError, unknownIdError } from "../../errors.js";
import type { MergeMethod, MergeSpace, MethodRegistry } from "./merge-method.js";

/** The method with this id, or an unknown-id error with "did you mean". */
export function findMethod(registry: MethodRegistry, id: string, path?: string): MergeMethod {
  const method = registry.get(id);
  if (method) return method;
  const error = unknownIdError("merge method", id, registry.keys());
  throw new GyozaError("recipe", error.message, { path, fix: error.fix });
}

/**
 * Rejects wrong input counts and merge spaces (a delta where a weight belongs, or the reverse)
 * before any byte is read. `path` is where the inputs sit in the recipe, for the error message.
 */
export function checkSpaces(method: MergeMethod, inputSpaces: readonly MergeSpace[], path?: string): void {
  if (inputSpaces.length !== method.inputs.length) {
    throw new GyozaError(
      "recipe",
      `${method.id} takes ${method.inputs.length} inputs (${method.inputs.map((i) => i.name).join(", ")}), got ${inputSpaces.length}`,
      { path },
    );
  }
  method.inputs.forEach((input, i) => {
    const space = inputSpaces[i];
    if (space === input.space) return;
    const fix =
      input.space === "weight"
        ? `apply the delta to a model first (add_delta), or use a method that takes a delta`
        : `turn the model into a delta first (subtract it from its base)`;
    throw new GyozaError(
      "recipe",
      `${method.id} input "${input.name}" takes a ${input.space}, got a ${space}`,
      {
        path: path === undefined ? input.name : `${path}.${input.name}`,
        fix,
      },
    );
  });
}

export { type BoundOp, type BoundRead, bindKey, isElementwise, type PlanSources } from "./bind-plan.js";
export { countNonFinite, evaluateOp, type KeyStats, MERGE_CHUNK_ELEMENTS } from "./evaluate-op.js";
export { type BoundKey, runPrepasses } from "./prepass.js";

export { ALLOWED_CALLABLES, STORAGE_TYPES } from "./allowlist.js";
export { interpretPickle, type PickleResult } from "./interpret-pickle.js";
export * from "./limits.js";
export { PickleWriter } from "./pickle-writer.js";
export * from "./values.js";
export { childrenOf, nodePath, type WalkedNode, walkPickle } from "./walk-pickle.js";

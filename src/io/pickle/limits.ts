/**
 * Hostile-input limits of the pickle interpreter. Every number in a pickle comes from an untrusted
 * file, so each resource it can make us spend is bounded by a named constant.
 */

/** Memo entries; a 2,000-tensor SD checkpoint uses ~20k, so this bounds the Map, not real files. */
export const MAX_MEMO_ENTRIES = 4_000_000;
/** Values on the stack at once; pickle batches at most 1,000 items per MARK, real files stay far below. */
export const MAX_STACK_DEPTH = 1_000_000;
/** Open MARKs at once; torch nests one per open container batch (< 20 in real files). mal_deep_nesting opens 100,000. */
export const MAX_MARK_DEPTH = 256;
/** Items in one list, tuple or dict; a state dict has a few thousand entries, LoRAs tens of thousands. */
export const MAX_CONTAINER_ENTRIES = 10_000_000;
/** Bytes of one string or bytes value (CWE-770); the largest real ones are metadata JSON of a few MB. */
export const MAX_STRING_BYTES = 64 * 1024 * 1024;
/** Bytes of one LONG1/LONG4 integer; torch's magic number is 10 bytes, no real integer is wider. */
export const MAX_LONG_BYTES = 64;
/** Length of a GLOBAL module or name line; real dotted names are < 100 bytes. */
export const MAX_GLOBAL_NAME_BYTES = 256;
/** Dimensions of a tensor; real models use at most 5. */
export const MAX_TENSOR_RANK = 64;
/** Nesting depth when walking the result; real checkpoints nest < 10 deep (optimizer states). */
export const MAX_NESTING_DEPTH = 200;
/** Nodes visited when walking the result, so shared sub-trees cannot make a walk exponential (100× big Lightning files). */
export const MAX_WALK_NODES = 5_000_000;
/** Bytes read from the source at a time; data.pkl of an SD checkpoint is ~100 KB to a few MB. */
export const READ_CHUNK_BYTES = 1024 * 1024;

export { fusedMultiplyAddF32 } from "./fused-multiply-add.js";
export { createJsKernel } from "./js-kernel.js";
export { KERNEL_ENV_VARIABLE, type KernelPreference, loadKernel } from "./load-kernel.js";
export {
  CANONICAL_NAN_BITS,
  FLOAT_DTYPES,
  type FloatDType,
  floatDTypeBytes,
  KERNEL_NAMES,
  type KernelName,
  type MergeKernel,
  weightedSumWeights,
} from "./merge-kernel.js";
export {
  createNativeKernel,
  type NativeVariant,
  nativeCachedBytes,
  nativeKernelBuilt,
  nativeReadAhead,
  nativeSimdAvailable,
} from "./native-kernel.js";
export { createWasmKernel, hasWasmSimd } from "./wasm-kernel.js";

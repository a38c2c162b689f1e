// CPU kernels (AssemblyScript → one SIMD wasm module over an imported shared memory).
// The host (src/backend/cpu) lays memory out by hand; kernels take byte pointers.

/** Build identity probe. */
export function kernelsVersion(): i32 {
  return 1;
}

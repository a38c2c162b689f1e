// Probe: can Debian's emscripten (3.1.6, LLVM 14) produce relaxed SIMD that Node 20 accepts?
// LLVM 14 has no relaxed integer dot builtin (__builtin_wasm_dot_i8x16_i7x16_add_s_i32x4 is unknown)
// and its relaxed fma uses a pre-standard opcode: V8 rejects the module ("invalid simd opcode"),
// with or without --experimental-wasm-relaxed-simd. build.sh builds and tries it.
#include <wasm_simd128.h>
__attribute__((used)) float fma4(float a, float b, float c) {
  v128_t r = __builtin_wasm_fma_f32x4((__f32x4)wasm_f32x4_splat(a), (__f32x4)wasm_f32x4_splat(b), (__f32x4)wasm_f32x4_splat(c));
  return wasm_f32x4_extract_lane(r, 0);
}

#!/bin/sh
# Builds the C toolchain baseline (bench/emscripten/gemv.c) with Debian's emscripten into
# build/emscripten/gemv.wasm: a standalone module (no JS glue) that bench/emscripten/gemv.ts
# instantiates directly. Needs `apt-get install -y emscripten` (3.1.6 on Debian 12).
set -e
cd "$(dirname "$0")/../.."
mkdir -p build/emscripten
FLAGS="-O3 -msimd128 --no-entry -sSTANDALONE_WASM=1 -sINITIAL_MEMORY=512MB -sALLOW_MEMORY_GROWTH=0 -sERROR_ON_UNDEFINED_SYMBOLS=0"
EXPORTS="-sEXPORTED_FUNCTIONS=_malloc,_gemv_scalar,_gemv_f32,_gemv_i16_prep,_gemv_i16"
emcc $FLAGS $EXPORTS bench/emscripten/gemv.c -o build/emscripten/gemv.wasm
emcc --version | head -1 > build/emscripten/VERSION
# Relaxed SIMD: -mrelaxed-simd on gemv.c changes nothing (clang emits no relaxed op for it); a probe
# that asks for one explicitly compiles, but Node 20's V8 rejects the opcode LLVM 14 emits.
emcc -O3 -msimd128 -mrelaxed-simd --no-entry -sSTANDALONE_WASM=1 -sEXPORTED_FUNCTIONS=_fma4 \
  bench/emscripten/relaxed-probe.c -o build/emscripten/relaxed-probe.wasm
node --experimental-wasm-relaxed-simd -e "WebAssembly.instantiate(require('fs').readFileSync('build/emscripten/relaxed-probe.wasm'),{}).then(m=>console.log('relaxed SIMD probe: runs, fma4(2,3,1) =',m.instance.exports.fma4(2,3,1)),e=>console.log('relaxed SIMD probe: rejected by Node',process.version+':',e.message))"
ls -l build/emscripten

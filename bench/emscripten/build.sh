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
# Relaxed SIMD: Debian's emscripten 3.1.6 may fail here or emit opcodes V8 rejects (DESIGN.md).
if emcc $FLAGS -mrelaxed-simd $EXPORTS bench/emscripten/gemv.c -o build/emscripten/gemv-relaxed.wasm 2> build/emscripten/relaxed.log; then
  echo "relaxed build: ok"
else
  echo "relaxed build: failed (see build/emscripten/relaxed.log)"
fi
ls -l build/emscripten

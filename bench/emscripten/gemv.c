// Toolchain baseline for issue F: the GPTQ int4 GEMV written in C for emscripten (wasm SIMD).
//
// Same layout and semantics as qwen-rt's kernel, read straight from the checkpoint layout (no
// re-tiling, which is what a C port would naturally do):
//   x      f32 [K]
//   qw     i32 [K/8][N]   nibble j of word (k8, n) is row 8·k8 + j, LSB first
//   scales f16 [K/128][N]
//   zeros  i32 [K/128][N/8] storing zero − 1 (sym: 0x77777777)
//   y[n] = Σ_k x[k] · scale[g(k), n] · (q[k, n] − (zero[g(k), n] + 1))
// Three variants:
//   gemv_scalar  plain C, f32 dequantise-then-multiply, left to clang's autovectoriser
//   gemv_f32     wasm_simd128.h intrinsics, f32 dequantise-then-multiply, 16 columns per pass
//   gemv_i16     int16 activations per group (step max|x|/32767, like qwen-rt's "int16" mode) and
//                i32x4.dot_i16x8_s on nibble pairs (rows j and j+4 of a word share one i32 lane)
// Build: bench/emscripten/build.sh
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

#define GS 128

static inline float h2f(uint16_t h) {
  uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 31, m = h & 0x3ff;
  union { uint32_t u; float f; } v;
  if (e == 0) { v.f = (float)m * (1.0f / 16777216.0f); v.u |= s; return v.f; }
  v.u = s | ((e + 112) << 23) | (m << 13);
  return v.f;
}

static inline int zero_of(const int32_t *zeros, int N, int g, int n) {
  return (int)(((uint32_t)zeros[g * (N / 8) + n / 8] >> (4 * (n & 7))) & 15) + 1;
}

// Scratch: per-column group accumulators and decoded scales/zeros (set up by the caller).
__attribute__((used)) void gemv_scalar(int K, int N, const float *x, const int32_t *qw, const uint16_t *scales,
                                       const int32_t *zeros, float *y, float *acc) {
  for (int n = 0; n < N; n++) y[n] = 0.f;
  for (int g = 0; g < K / GS; g++) {
    for (int n = 0; n < N; n++) acc[n] = 0.f;
    for (int k8 = g * GS / 8; k8 < (g + 1) * GS / 8; k8++) {
      const float *xk = x + 8 * k8;
      const int32_t *row = qw + (size_t)k8 * N;
      for (int n = 0; n < N; n++) {
        uint32_t w = (uint32_t)row[n];
        float t = 0.f;
        for (int j = 0; j < 8; j++) t += xk[j] * (float)((w >> (4 * j)) & 15);
        acc[n] += t;
      }
    }
    float xsum = 0.f;
    for (int k = g * GS; k < (g + 1) * GS; k++) xsum += x[k];
    for (int n = 0; n < N; n++)
      y[n] += h2f(scales[g * N + n]) * (acc[n] - (float)zero_of(zeros, N, g, n) * xsum);
  }
}

#ifdef __wasm_simd128__
// Σ_k x[k]·q[k,n] per group with f32 lanes = 4 columns; 16 columns (4 vectors) per pass.
__attribute__((used)) void gemv_f32(int K, int N, const float *x, const int32_t *qw, const uint16_t *scales,
                                    const int32_t *zeros, float *y) {
  const int G = K / GS;
  const v128_t mask = wasm_i32x4_splat(15);
  for (int n0 = 0; n0 < N; n0 += 16) {
    v128_t out[4] = {wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0)};
    for (int g = 0; g < G; g++) {
      v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
      float xsum = 0.f;
      for (int k8 = g * GS / 8; k8 < (g + 1) * GS / 8; k8++) {
        const int32_t *p = qw + (size_t)k8 * N + n0;
        v128_t w0 = wasm_v128_load(p), w1 = wasm_v128_load(p + 4), w2 = wasm_v128_load(p + 8), w3 = wasm_v128_load(p + 12);
        for (int j = 0; j < 8; j++) {
          float xv = x[8 * k8 + j];
          xsum += xv;
          v128_t xj = wasm_f32x4_splat(xv);
          a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xj, wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(w0, 4 * j), mask))));
          a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xj, wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(w1, 4 * j), mask))));
          a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(xj, wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(w2, 4 * j), mask))));
          a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(xj, wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(w3, 4 * j), mask))));
        }
      }
      v128_t acc[4] = {a0, a1, a2, a3};
      for (int v = 0; v < 4; v++) {
        int n = n0 + 4 * v;
        v128_t s = wasm_f32x4_make(h2f(scales[g * N + n]), h2f(scales[g * N + n + 1]), h2f(scales[g * N + n + 2]), h2f(scales[g * N + n + 3]));
        v128_t z = wasm_f32x4_make((float)zero_of(zeros, N, g, n), (float)zero_of(zeros, N, g, n + 1),
                                   (float)zero_of(zeros, N, g, n + 2), (float)zero_of(zeros, N, g, n + 3));
        v128_t t = wasm_f32x4_sub(acc[v], wasm_f32x4_mul(z, wasm_f32x4_splat(xsum)));
        out[v] = wasm_f32x4_add(out[v], wasm_f32x4_mul(s, t));
      }
    }
    for (int v = 0; v < 4; v++) {
      if (n0 + 4 * v + 4 <= N) wasm_v128_store(y + n0 + 4 * v, out[v]);
      else for (int l = 0; l < 4 && n0 + 4 * v + l < N; l++) y[n0 + 4 * v + l] = ((float *)&out[v])[l];
    }
  }
}

// int16 activations: xp[k8*4 + j] packs (xq[8k8+j], xq[8k8+j+4]) as the two i16 halves of an i32,
// matching the nibble pair ((w >> 4j) & 0xF, (w >> 4j+16) & 0xF) of a word.
__attribute__((used)) void gemv_i16_prep(int K, const float *x, int32_t *xp, float *xs, int32_t *xsum) {
  for (int g = 0; g < K / GS; g++) {
    float m = 0.f;
    for (int k = g * GS; k < (g + 1) * GS; k++) m = fmaxf(m, fabsf(x[k]));
    float inv = m > 0 ? 32767.f / m : 0.f;
    int sum = 0;
    for (int k8 = g * GS / 8; k8 < (g + 1) * GS / 8; k8++) {
      int q[8];
      for (int j = 0; j < 8; j++) {
        int v = (int)nearbyintf(x[8 * k8 + j] * inv);
        q[j] = v > 32767 ? 32767 : v < -32767 ? -32767 : v;
        sum += q[j];
      }
      for (int j = 0; j < 4; j++) xp[4 * k8 + j] = (int32_t)((uint32_t)(uint16_t)q[j] | ((uint32_t)(uint16_t)q[j + 4] << 16));
    }
    xs[g] = m / 32767.f;
    xsum[g] = sum;
  }
}

__attribute__((used)) void gemv_i16(int K, int N, const int32_t *xp, const float *xs, const int32_t *xsum,
                                    const int32_t *qw, const uint16_t *scales, const int32_t *zeros, float *y) {
  const int G = K / GS;
  const v128_t mask = wasm_i32x4_splat(0x000F000F);
  for (int n0 = 0; n0 < N; n0 += 16) {
    v128_t out[4] = {wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0), wasm_f32x4_splat(0)};
    for (int g = 0; g < G; g++) {
      v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
      for (int k8 = g * GS / 8; k8 < (g + 1) * GS / 8; k8++) {
        const int32_t *p = qw + (size_t)k8 * N + n0;
        v128_t w0 = wasm_v128_load(p), w1 = wasm_v128_load(p + 4), w2 = wasm_v128_load(p + 8), w3 = wasm_v128_load(p + 12);
        for (int j = 0; j < 4; j++) {
          v128_t xj = wasm_v128_load32_splat(xp + 4 * k8 + j);
          a0 = wasm_i32x4_add(a0, wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u32x4_shr(w0, 4 * j), mask), xj));
          a1 = wasm_i32x4_add(a1, wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u32x4_shr(w1, 4 * j), mask), xj));
          a2 = wasm_i32x4_add(a2, wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u32x4_shr(w2, 4 * j), mask), xj));
          a3 = wasm_i32x4_add(a3, wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u32x4_shr(w3, 4 * j), mask), xj));
        }
      }
      v128_t acc[4] = {a0, a1, a2, a3};
      v128_t sx = wasm_i32x4_splat(xsum[g]);
      v128_t step = wasm_f32x4_splat(xs[g]);
      for (int v = 0; v < 4; v++) {
        int n = n0 + 4 * v;
        v128_t s = wasm_f32x4_make(h2f(scales[g * N + n]), h2f(scales[g * N + n + 1]), h2f(scales[g * N + n + 2]), h2f(scales[g * N + n + 3]));
        v128_t z = wasm_i32x4_make(zero_of(zeros, N, g, n), zero_of(zeros, N, g, n + 1), zero_of(zeros, N, g, n + 2), zero_of(zeros, N, g, n + 3));
        v128_t t = wasm_f32x4_convert_i32x4(wasm_i32x4_sub(acc[v], wasm_i32x4_mul(z, sx)));
        out[v] = wasm_f32x4_add(out[v], wasm_f32x4_mul(wasm_f32x4_mul(s, step), t));
      }
    }
    for (int v = 0; v < 4; v++) {
      if (n0 + 4 * v + 4 <= N) wasm_v128_store(y + n0 + 4 * v, out[v]);
      else for (int l = 0; l < 4 && n0 + 4 * v + l < N; l++) y[n0 + 4 * v + l] = ((float *)&out[v])[l];
    }
  }
}
#endif

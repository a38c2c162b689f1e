// CPU kernels (AssemblyScript → one SIMD wasm module over an imported shared memory).
//
// The host (src/backend/cpu) lays memory out by hand and passes byte pointers; nothing here
// allocates or keeps state, so any number of instances (one per worker thread and per memory)
// can run over the same memories. Every parallel kernel takes (lo, hi, tid, ...): the host splits
// [0, units) into ranges per thread; an output value's arithmetic never depends on the split, so
// 1 and N threads give bitwise identical results.
//
// Numerics: all accumulation is f32 in a fixed order (SIMD lanes by k mod 4, a fixed horizontal
// sum, then the scalar tail), no fused multiply-add (wasm SIMD has none without relaxed SIMD).

/** Build identity probe. */
export function kernelsVersion(): i32 {
  return 2;
}

/** First byte the host may use (the module has no data of its own above it). */
export function heapBase(): usize {
  return __heap_base;
}

// ---------------------------------------------------------------------------------------------
// half-float helpers. f16 → f32 without branches: put h in the top 16 bits, shift the exponent and
// mantissa into f32 position with an arithmetic shift (keeps the sign), mask, and rebias with a
// multiplication by 2^112 (exact; also correct for f16 subnormals and zero). Inf/NaN are not
// representable in weights we accept and map to large finite values.

const F16_MASK: i32 = 0x8fffe000;
const TWO_112: f32 = 5.192296858534828e33;

@inline function f16ToF32(h: u32): f32 {
  const b = (<i32>(h << 16) >> 3) & F16_MASK;
  return reinterpret<f32>(b) * TWO_112;
}

@inline function bf16ToF32(h: u32): f32 {
  return reinterpret<f32>(h << 16);
}

/** 4 weights at p as f32x4. K: f32 = f32 weights, u16 = f16, i16 = bf16. */
@inline function w4<K>(p: usize): v128 {
  if (isFloat<K>()) return v128.load(p);
  if (sizeof<K>() == 4) {
    const v = v128.load64_zero(p);
    const h = i8x16.shuffle(i32x4.splat(0), v, 0, 0, 16, 17, 0, 0, 18, 19, 0, 0, 20, 21, 0, 0, 22, 23);
    return v128.and(i32x4.shr_s(h, 3), i32x4.splat(F16_MASK));
  }
  const v = v128.load64_zero(p);
  const z = i32x4.splat(0);
  const h = i8x16.shuffle(z, v, 0, 0, 16, 17, 0, 0, 18, 19, 0, 0, 20, 21, 0, 0, 22, 23);
  if (isSigned<K>()) return h;
  return f32x4.mul(v128.and(i32x4.shr_s(h, 3), i32x4.splat(F16_MASK)), f32x4.splat(TWO_112));
}

@inline function w1<K>(p: usize): f32 {
  if (isFloat<K>()) return load<f32>(p);
  if (sizeof<K>() == 4) return reinterpret<f32>((<i32>(<u32>load<u16>(p) << 16) >> 3) & F16_MASK);
  if (isSigned<K>()) return bf16ToF32(<u32>load<u16>(p));
  return f16ToF32(<u32>load<u16>(p));
}

/**
 * 8 weights at p as two f32x4 (k..k+3, k+4..k+7). f16 works on 8 i16 lanes at once: the high
 * half of each f32 is (h >> 3 arithmetic) & 0x8fff, the low half h << 13; an interleave makes the
 * f32 bits, ×2^112 rebiases (same values as w4).
 */
@inline function w8lo<K>(p: usize): v128 {
  if (isFloat<K>()) return v128.load(p);
  const v = v128.load(p);
  if (isSigned<K>()) return i16x8.shuffle(i32x4.splat(0), v, 0, 8, 1, 9, 2, 10, 3, 11);
  const a = v128.and(i16x8.shr_s(v, 3), i16x8.splat(<i16>0x8fff));
  const b = i16x8.shl(v, 13);
  const w = i16x8.shuffle(b, a, 0, 8, 1, 9, 2, 10, 3, 11);
  // K = u32 marks "x already scaled by 2^112": the weight stays w·2^-112 (see denseF16x)
  return sizeof<K>() == 4 ? w : f32x4.mul(w, f32x4.splat(TWO_112));
}
@inline function w8hi<K>(p: usize): v128 {
  if (isFloat<K>()) return v128.load(p, 16);
  const v = v128.load(p);
  if (isSigned<K>()) return i16x8.shuffle(i32x4.splat(0), v, 4, 12, 5, 13, 6, 14, 7, 15);
  const a = v128.and(i16x8.shr_s(v, 3), i16x8.splat(<i16>0x8fff));
  const b = i16x8.shl(v, 13);
  const w = i16x8.shuffle(b, a, 4, 12, 5, 13, 6, 14, 7, 15);
  return sizeof<K>() == 4 ? w : f32x4.mul(w, f32x4.splat(TWO_112));
}

/** Bytes per weight: u32 is the marker of prescaled f16 (2 bytes). */
@inline function esize<K>(): usize {
  return sizeof<K>() == 4 && !isFloat<K>() ? 2 : sizeof<K>();
}

/** Horizontal sum in a fixed order: (l0 + l2) + (l1 + l3). */
@inline function hsum(v: v128): f32 {
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

// ---------------------------------------------------------------------------------------------
// Dense matmul: out[r, c] = Σ_k x[r, k] · W[c, k] (+ bias[c]); W row-major [outF, inF] (torch
// Linear). Units are output columns c ∈ [lo, hi). Every (r, c) value is computed the same way
// whichever path (4 columns × 2 rows, 4 × 1, 1 × 1) handles it.

@inline function denseOne<K>(wr: usize, xr: usize, inF: i32, n4: i32): f32 {
  const E: usize = esize<K>();
  const n8 = inF & ~7;
  let a = f32x4.splat(0);
  let k = 0;
  for (; k < n8; k += 8) {
    const w = wr + <usize>k * E;
    const x = xr + (<usize>k << 2);
    a = f32x4.add(a, f32x4.mul(w8lo<K>(w), v128.load(x)));
    a = f32x4.add(a, f32x4.mul(w8hi<K>(w), v128.load(x, 16)));
  }
  for (; k < n4; k += 4) {
    a = f32x4.add(a, f32x4.mul(w4<K>(wr + <usize>k * E), v128.load(xr + (<usize>k << 2))));
  }
  let s = hsum(a);
  for (let k = n4; k < inF; k++) s += w1<K>(wr + <usize>k * E) * load<f32>(xr + (<usize>k << 2));
  return s;
}

@inline function denseTail<K>(s: f32, wr: usize, xr: usize, inF: i32, n4: i32): f32 {
  const E: usize = esize<K>();
  for (let k = n4; k < inF; k++) s += w1<K>(wr + <usize>k * E) * load<f32>(xr + (<usize>k << 2));
  return s;
}

@inline function denseBody<K>(lo: i32, hi: i32, rows: i32, inF: i32, outF: i32, W: usize, x: usize, bias: usize, out: usize): void {
  const E: usize = esize<K>();
  const n4 = inF & ~3;
  const n8 = inF & ~7;
  const rowBytes = <usize>inF * E;
  const xStride = <usize>inF << 2;
  const oStride = <usize>outF << 2;
  let c = lo;
  for (; c + 4 <= hi; c += 4) {
    const w0 = W + <usize>c * rowBytes;
    const wa = w0 + rowBytes;
    const wb = wa + rowBytes;
    const wc = wb + rowBytes;
    let b0: f32 = 0, b1: f32 = 0, b2: f32 = 0, b3: f32 = 0;
    if (bias) {
      b0 = load<f32>(bias + (<usize>c << 2));
      b1 = load<f32>(bias + (<usize>c << 2), 4);
      b2 = load<f32>(bias + (<usize>c << 2), 8);
      b3 = load<f32>(bias + (<usize>c << 2), 12);
    }
    let r = 0;
    for (; r + 2 <= rows; r += 2) {
      const x0 = x + <usize>r * xStride;
      const x1 = x0 + xStride;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let e0 = f32x4.splat(0), e1 = f32x4.splat(0), e2 = f32x4.splat(0), e3 = f32x4.splat(0);
      let k = 0;
      for (; k < n8; k += 8) {
        const off = <usize>k * E;
        for (let half = 0; half < 2; half++) {
          const xv = v128.load(x0 + (<usize>(k + half * 4) << 2));
          const yv = v128.load(x1 + (<usize>(k + half * 4) << 2));
          const v0 = half == 0 ? w8lo<K>(w0 + off) : w8hi<K>(w0 + off);
          const v1 = half == 0 ? w8lo<K>(wa + off) : w8hi<K>(wa + off);
          const v2 = half == 0 ? w8lo<K>(wb + off) : w8hi<K>(wb + off);
          const v3 = half == 0 ? w8lo<K>(wc + off) : w8hi<K>(wc + off);
          a0 = f32x4.add(a0, f32x4.mul(v0, xv));
          a1 = f32x4.add(a1, f32x4.mul(v1, xv));
          a2 = f32x4.add(a2, f32x4.mul(v2, xv));
          a3 = f32x4.add(a3, f32x4.mul(v3, xv));
          e0 = f32x4.add(e0, f32x4.mul(v0, yv));
          e1 = f32x4.add(e1, f32x4.mul(v1, yv));
          e2 = f32x4.add(e2, f32x4.mul(v2, yv));
          e3 = f32x4.add(e3, f32x4.mul(v3, yv));
        }
      }
      for (; k < n4; k += 4) {
        const off = <usize>k * E;
        const xv = v128.load(x0 + (<usize>k << 2));
        const yv = v128.load(x1 + (<usize>k << 2));
        const v0 = w4<K>(w0 + off);
        const v1 = w4<K>(wa + off);
        const v2 = w4<K>(wb + off);
        const v3 = w4<K>(wc + off);
        a0 = f32x4.add(a0, f32x4.mul(v0, xv));
        a1 = f32x4.add(a1, f32x4.mul(v1, xv));
        a2 = f32x4.add(a2, f32x4.mul(v2, xv));
        a3 = f32x4.add(a3, f32x4.mul(v3, xv));
        e0 = f32x4.add(e0, f32x4.mul(v0, yv));
        e1 = f32x4.add(e1, f32x4.mul(v1, yv));
        e2 = f32x4.add(e2, f32x4.mul(v2, yv));
        e3 = f32x4.add(e3, f32x4.mul(v3, yv));
      }
      const o0 = out + <usize>r * oStride + (<usize>c << 2);
      const o1 = o0 + oStride;
      store<f32>(o0, denseTail<K>(hsum(a0), w0, x0, inF, n4) + b0);
      store<f32>(o0, denseTail<K>(hsum(a1), wa, x0, inF, n4) + b1, 4);
      store<f32>(o0, denseTail<K>(hsum(a2), wb, x0, inF, n4) + b2, 8);
      store<f32>(o0, denseTail<K>(hsum(a3), wc, x0, inF, n4) + b3, 12);
      store<f32>(o1, denseTail<K>(hsum(e0), w0, x1, inF, n4) + b0);
      store<f32>(o1, denseTail<K>(hsum(e1), wa, x1, inF, n4) + b1, 4);
      store<f32>(o1, denseTail<K>(hsum(e2), wb, x1, inF, n4) + b2, 8);
      store<f32>(o1, denseTail<K>(hsum(e3), wc, x1, inF, n4) + b3, 12);
    }
    for (; r < rows; r++) {
      const x0 = x + <usize>r * xStride;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let k = 0;
      for (; k < n8; k += 8) {
        const off = <usize>k * E;
        const xv = v128.load(x0 + (<usize>k << 2));
        const xw = v128.load(x0 + (<usize>k << 2), 16);
        a0 = f32x4.add(a0, f32x4.mul(w8lo<K>(w0 + off), xv));
        a1 = f32x4.add(a1, f32x4.mul(w8lo<K>(wa + off), xv));
        a2 = f32x4.add(a2, f32x4.mul(w8lo<K>(wb + off), xv));
        a3 = f32x4.add(a3, f32x4.mul(w8lo<K>(wc + off), xv));
        a0 = f32x4.add(a0, f32x4.mul(w8hi<K>(w0 + off), xw));
        a1 = f32x4.add(a1, f32x4.mul(w8hi<K>(wa + off), xw));
        a2 = f32x4.add(a2, f32x4.mul(w8hi<K>(wb + off), xw));
        a3 = f32x4.add(a3, f32x4.mul(w8hi<K>(wc + off), xw));
      }
      for (; k < n4; k += 4) {
        const off = <usize>k * E;
        const xv = v128.load(x0 + (<usize>k << 2));
        a0 = f32x4.add(a0, f32x4.mul(w4<K>(w0 + off), xv));
        a1 = f32x4.add(a1, f32x4.mul(w4<K>(wa + off), xv));
        a2 = f32x4.add(a2, f32x4.mul(w4<K>(wb + off), xv));
        a3 = f32x4.add(a3, f32x4.mul(w4<K>(wc + off), xv));
      }
      const o0 = out + <usize>r * oStride + (<usize>c << 2);
      store<f32>(o0, denseTail<K>(hsum(a0), w0, x0, inF, n4) + b0);
      store<f32>(o0, denseTail<K>(hsum(a1), wa, x0, inF, n4) + b1, 4);
      store<f32>(o0, denseTail<K>(hsum(a2), wb, x0, inF, n4) + b2, 8);
      store<f32>(o0, denseTail<K>(hsum(a3), wc, x0, inF, n4) + b3, 12);
    }
  }
  for (; c < hi; c++) {
    const wr = W + <usize>c * rowBytes;
    const b: f32 = bias ? load<f32>(bias + (<usize>c << 2)) : 0;
    for (let r = 0; r < rows; r++) {
      store<f32>(out + <usize>r * oStride + (<usize>c << 2), denseOne<K>(wr, x + <usize>r * xStride, inF, n4) + b);
    }
  }
}

export function denseF32(lo: i32, hi: i32, tid: i32, rows: i32, inF: i32, outF: i32, W: usize, x: usize, bias: usize, out: usize): void {
  denseBody<f32>(lo, hi, rows, inF, outF, W, x, bias, out);
}
export function denseF16(lo: i32, hi: i32, tid: i32, rows: i32, inF: i32, outF: i32, W: usize, x: usize, bias: usize, out: usize): void {
  denseBody<u16>(lo, hi, rows, inF, outF, W, x, bias, out);
}
/**
 * f16 weights against activations prescaled by 2^112 (xs = x·2^112, host-checked |x| < 2^15): the
 * f16 → f32 rebias multiply disappears; w·2^-112 · x·2^112 is the same f32 product as w · x.
 */
export function denseF16x(lo: i32, hi: i32, tid: i32, rows: i32, inF: i32, outF: i32, W: usize, x: usize, bias: usize, out: usize): void {
  denseBody<u32>(lo, hi, rows, inF, outF, W, x, bias, out);
}

/** max |x[i]| over [lo, hi) (NaN ignored). */
export function absMax(lo: i32, hi: i32, tid: i32, x: usize): f32 {
  let m: f32 = 0;
  for (let i = lo; i < hi; i++) m = Mathf.max(m, Mathf.abs(load<f32>(x + (<usize>i << 2))));
  return m;
}

/** dst[i] = x[i] · factor. */
export function scaleInto(lo: i32, hi: i32, tid: i32, x: usize, factor: f32, dst: usize): void {
  for (let i = lo; i < hi; i++) store<f32>(dst + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * factor);
}

export function denseBF16(lo: i32, hi: i32, tid: i32, rows: i32, inF: i32, outF: i32, W: usize, x: usize, bias: usize, out: usize): void {
  denseBody<i16>(lo, hi, rows, inF, outF, W, x, bias, out);
}

// ---------------------------------------------------------------------------------------------
// GPTQ int4. Upload re-tiles qweight into tiles of 4 output columns: tile t holds, for every
// block b of 32 (group-ordered) input rows, 4 × 16 bytes = column j's 4 words (rows 8i..8i+7 of
// the block in word i, nibble n = row 8i + n, as in the checkpoint). Seen as 8 u16 lanes, lane l
// shifted right by 4s holds row 4l + s of the block, so the activation of each block is stored
// permuted as 4 vectors xs[s][l] = x[4l + s] and no per-word shuffle is needed.
// S: f32 [tiles][groups][4] scales; Z: i32 [tiles][groups][4] zero + 1.

/** Position of row i (0..31) of a block in the permuted activation order. */
@inline function permPos(i: i32): i32 {
  return ((i & 3) << 3) | (i >> 2);
}

/**
 * Copies the columns of a qweight chunk (words [in/8][srcCols], tensor columns 4·tile0..) into the
 * tiled layout: units are chunk tiles, tile tt lands at tile0 + tt. perm (i32 [in], group-ordered
 * row → checkpoint row) or 0 for the identity.
 */
export function gptqRetile(lo: i32, hi: i32, tid: i32, inF: i32, src: usize, srcCols: i32, tile0: i32, perm: usize, W: usize): void {
  const blocks = inF >> 5;
  const tileBytes = <usize>inF << 1;
  const rowWords = <usize>srcCols << 2;
  for (let tt = lo; tt < hi; tt++) {
    const dstT = W + <usize>(tile0 + tt) * tileBytes;
    for (let j = 0; j < 4; j++) {
      const col = tt * 4 + j;
      const s0 = src + (<usize>col << 2);
      for (let b = 0; b < blocks; b++) {
        const d = dstT + (<usize>b << 6) + (<usize>j << 4);
        if (!perm) {
          for (let i = 0; i < 4; i++) {
            store<u32>(d + (<usize>i << 2), load<u32>(s0 + <usize>(b * 4 + i) * rowWords));
          }
        } else {
          for (let i = 0; i < 4; i++) {
            let word: u32 = 0;
            for (let n = 0; n < 8; n++) {
              const k = load<i32>(perm + (<usize>(b * 32 + i * 8 + n) << 2));
              const q = (load<u32>(s0 + <usize>(k >> 3) * rowWords) >> ((k & 7) << 2)) & 15;
              word |= q << (n << 2);
            }
            store<u32>(d + (<usize>i << 2), word);
          }
        }
      }
    }
  }
}

/**
 * Quantizes activation rows [lo, hi) to int16 per group (scale = max|x| / 32767) in the permuted
 * block order; xs: f32 [rows][groups] scales, xsum: i32 [rows][groups] sums of the int16 values.
 */
export function gptqPrepI16(lo: i32, hi: i32, tid: i32, inF: i32, gsize: i32, x: usize, perm: usize, xq: usize, xs: usize, xsum: usize): void {
  const groups = inF / gsize;
  for (let r = lo; r < hi; r++) {
    const xr = x + <usize>r * inF * 4;
    const qr = xq + <usize>r * inF * 2;
    for (let g = 0; g < groups; g++) {
      const k0 = g * gsize;
      let m: f32 = 0;
      for (let k = k0; k < k0 + gsize; k++) {
        const src = perm ? load<i32>(perm + (<usize>k << 2)) : k;
        const v = Mathf.abs(load<f32>(xr + (<usize>src << 2)));
        if (v > m) m = v;
      }
      const inv: f32 = m > 0 ? <f32>32767.0 / m : 0;
      let sum = 0;
      for (let k = k0; k < k0 + gsize; k++) {
        const src = perm ? load<i32>(perm + (<usize>k << 2)) : k;
        let q = <i32>nearest<f32>(load<f32>(xr + (<usize>src << 2)) * inv);
        if (q > 32767) q = 32767;
        if (q < -32767) q = -32767;
        const pos = (k & ~31) + permPos(k & 31);
        store<i16>(qr + (<usize>pos << 1), <i16>q);
        sum += q;
      }
      const gi = <usize>(r * groups + g) << 2;
      store<f32>(xs + gi, m / <f32>32767.0);
      store<i32>(xsum + gi, sum);
    }
  }
}

/**
 * Two-part int16 activations ("split16"). Per group, s is the power of two with max|x| ≤ 32767·s;
 * hi = round(x / s), r = x − hi·s (exact: power-of-two scaling), lo = round(r · 32768 / s), so
 * x = s·(hi + lo/32768) to within s/65536 ≤ 2^-30 of the group's max. Per block of 32 rows: 32 hi
 * then 32 lo values, each in the permuted order; xs: f32 [rows][groups] = s;
 * xsum: i32 [rows][groups][2] = (Σ hi, Σ lo). Vectorised when the row order is the identity.
 */
export function gptqPrepS16(lo: i32, hi: i32, tid: i32, inF: i32, gsize: i32, x: usize, perm: usize, xq: usize, xs: usize, xsum: usize): void {
  const groups = inF / gsize;
  for (let r = lo; r < hi; r++) {
    const xr = x + <usize>r * inF * 4;
    const qr = xq + <usize>r * inF * 4;
    for (let g = 0; g < groups; g++) {
      const k0 = g * gsize;
      let m: f32 = 0;
      if (perm) {
        for (let k = k0; k < k0 + gsize; k++) m = Mathf.max(m, Mathf.abs(load<f32>(xr + (<usize>load<i32>(perm + (<usize>k << 2)) << 2))));
      } else {
        let mv = f32x4.splat(0);
        for (let k = k0; k < k0 + gsize; k += 4) mv = f32x4.max(mv, f32x4.abs(v128.load(xr + (<usize>k << 2))));
        m = Mathf.max(Mathf.max(f32x4.extract_lane(mv, 0), f32x4.extract_lane(mv, 1)), Mathf.max(f32x4.extract_lane(mv, 2), f32x4.extract_lane(mv, 3)));
      }
      // s = 2^e with e = ceil(log2(m / 32767)), kept where 1/s and 32768/s are finite normals
      let e: i32 = 0;
      if (m > 0) {
        e = <i32>Math.ceil(Math.log2(<f64>m / 32767.0));
        if (e < -100) e = -100;
        // log2 may round just below an integer: make sure max|x| / s ≤ 32767 (exact scaling)
        if (m * reinterpret<f32>((127 - e) << 23) > <f32>32767) e++;
      }
      const sc = reinterpret<f32>((e + 127) << 23);
      const inv = reinterpret<f32>((127 - e) << 23);
      const lsc = reinterpret<f32>((127 + 15 - e) << 23);
      let sumHi = 0;
      let sumLo = 0;
      if (perm) {
        for (let k = k0; k < k0 + gsize; k++) {
          const v = load<f32>(xr + (<usize>load<i32>(perm + (<usize>k << 2)) << 2));
          const hf = nearest<f32>(v * inv);
          const qh = <i32>hf;
          const ql = <i32>nearest<f32>((v - hf * sc) * lsc);
          const pos = ((k & ~31) << 1) + permPos(k & 31);
          store<i16>(qr + (<usize>pos << 1), <i16>qh);
          store<i16>(qr + (<usize>(pos + 32) << 1), <i16>ql);
          sumHi += qh;
          sumLo += ql;
        }
      } else {
        const iv = f32x4.splat(inv);
        const sv = f32x4.splat(sc);
        const lv = f32x4.splat(lsc);
        let hs = i32x4.splat(0);
        let ls = i32x4.splat(0);
        for (let k = k0; k < k0 + gsize; k += 32) {
          const src = xr + (<usize>k << 2);
          const dst = qr + (<usize>k << 2);
          // two halves of 16 values: rows 4l + s for l in 0..3 (half 0) and 4..7 (half 1)
          for (let half = 0; half < 2; half++) {
            const p = src + (<usize>half << 6);
            const v0 = v128.load(p), v1 = v128.load(p, 16), v2 = v128.load(p, 32), v3 = v128.load(p, 48);
            const f0 = f32x4.nearest(f32x4.mul(v0, iv)), f1 = f32x4.nearest(f32x4.mul(v1, iv));
            const f2 = f32x4.nearest(f32x4.mul(v2, iv)), f3 = f32x4.nearest(f32x4.mul(v3, iv));
            const h0 = i32x4.trunc_sat_f32x4_s(f0), h1 = i32x4.trunc_sat_f32x4_s(f1);
            const h2 = i32x4.trunc_sat_f32x4_s(f2), h3 = i32x4.trunc_sat_f32x4_s(f3);
            const l0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(f32x4.sub(v0, f32x4.mul(f0, sv)), lv)));
            const l1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(f32x4.sub(v1, f32x4.mul(f1, sv)), lv)));
            const l2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(f32x4.sub(v2, f32x4.mul(f2, sv)), lv)));
            const l3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(f32x4.sub(v3, f32x4.mul(f3, sv)), lv)));
            hs = i32x4.add(hs, i32x4.add(i32x4.add(h0, h1), i32x4.add(h2, h3)));
            ls = i32x4.add(ls, i32x4.add(i32x4.add(l0, l1), i32x4.add(l2, l3)));
            // 4×4 transposes: T_s = [v0[s], v1[s], v2[s], v3[s]] (rows 4l + s, l = 4·half + 0..3)
            const ha = i32x4.shuffle(h0, h1, 0, 4, 1, 5), hb = i32x4.shuffle(h2, h3, 0, 4, 1, 5);
            const hc = i32x4.shuffle(h0, h1, 2, 6, 3, 7), hd = i32x4.shuffle(h2, h3, 2, 6, 3, 7);
            const la = i32x4.shuffle(l0, l1, 0, 4, 1, 5), lb = i32x4.shuffle(l2, l3, 0, 4, 1, 5);
            const lc = i32x4.shuffle(l0, l1, 2, 6, 3, 7), ld = i32x4.shuffle(l2, l3, 2, 6, 3, 7);
            // i16 position of (s, l) in the block: s·8 + l; this half fills l = 4·half .. 4·half + 3
            const o = dst + (<usize>half << 3);
            v128.store64_lane(o, i16x8.narrow_i32x4_s(i32x4.shuffle(ha, hb, 0, 1, 4, 5), i32x4.splat(0)), 0);
            v128.store64_lane(o + 16, i16x8.narrow_i32x4_s(i32x4.shuffle(ha, hb, 2, 3, 6, 7), i32x4.splat(0)), 0);
            v128.store64_lane(o + 32, i16x8.narrow_i32x4_s(i32x4.shuffle(hc, hd, 0, 1, 4, 5), i32x4.splat(0)), 0);
            v128.store64_lane(o + 48, i16x8.narrow_i32x4_s(i32x4.shuffle(hc, hd, 2, 3, 6, 7), i32x4.splat(0)), 0);
            v128.store64_lane(o + 64, i16x8.narrow_i32x4_s(i32x4.shuffle(la, lb, 0, 1, 4, 5), i32x4.splat(0)), 0);
            v128.store64_lane(o + 80, i16x8.narrow_i32x4_s(i32x4.shuffle(la, lb, 2, 3, 6, 7), i32x4.splat(0)), 0);
            v128.store64_lane(o + 96, i16x8.narrow_i32x4_s(i32x4.shuffle(lc, ld, 0, 1, 4, 5), i32x4.splat(0)), 0);
            v128.store64_lane(o + 112, i16x8.narrow_i32x4_s(i32x4.shuffle(lc, ld, 2, 3, 6, 7), i32x4.splat(0)), 0);
          }
        }
        sumHi = i32x4.extract_lane(hs, 0) + i32x4.extract_lane(hs, 1) + i32x4.extract_lane(hs, 2) + i32x4.extract_lane(hs, 3);
        sumLo = i32x4.extract_lane(ls, 0) + i32x4.extract_lane(ls, 1) + i32x4.extract_lane(ls, 2) + i32x4.extract_lane(ls, 3);
      }
      const gi = <usize>(r * groups + g);
      store<f32>(xs + (gi << 2), sc);
      store<i32>(xsum + (gi << 3), sumHi);
      store<i32>(xsum + (gi << 3), sumLo, 4);
    }
  }
}

/**
 * out[r, 4t..] = Σ_g xs · S · ((Σq·hi − Z·Σhi) + (Σq·lo − Z·Σlo) / 32768) + bias; both integer parts
 * exact, so the only roundings are the per-group f32 ones.
 */
export function gptqMatmulS16(lo: i32, hi: i32, tid: i32, rows: i32, inF: i32, outF: i32, gsize: i32, W: usize, S: usize, Z: usize, xq: usize, xs: usize, xsum: usize, bias: usize, out: usize): void {
  const groups = inF / gsize;
  const bpg = gsize >> 5;
  const tileBytes = <usize>inF << 1;
  const gBytes = <usize>groups << 4;
  const inv32768 = f32x4.splat(<f32>1.0 / <f32>32768.0);
  for (let t = lo; t < hi; t++) {
    const wt = W + <usize>t * tileBytes;
    const st = S + <usize>t * gBytes;
    const zt = Z + <usize>t * gBytes;
    const bv = bias ? v128.load(bias + (<usize>t << 4)) : f32x4.splat(0);
    for (let r = 0; r < rows; r++) {
      let acc = f32x4.splat(0);
      let wp = wt;
      let xp = xq + <usize>r * inF * 4;
      const xsr = xs + (<usize>(r * groups) << 2);
      const xsumr = xsum + (<usize>(r * groups) << 3);
      for (let g = 0; g < groups; g++) {
        // two passes of two columns each keep 4 accumulators + 4 x vectors in registers
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), b0 = i32x4.splat(0), b1 = i32x4.splat(0);
        let a2 = i32x4.splat(0), a3 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
        let xb = xp;
        let wb = wp;
        for (let b = 0; b < bpg; b++) {
          const w0 = v128.load(wb);
          const w1 = v128.load(wb, 16);
          a0 = i32x4.add(a0, dot32(w0, v128.load(xb), v128.load(xb, 16), v128.load(xb, 32), v128.load(xb, 48)));
          a1 = i32x4.add(a1, dot32(w1, v128.load(xb), v128.load(xb, 16), v128.load(xb, 32), v128.load(xb, 48)));
          b0 = i32x4.add(b0, dot32(w0, v128.load(xb, 64), v128.load(xb, 80), v128.load(xb, 96), v128.load(xb, 112)));
          b1 = i32x4.add(b1, dot32(w1, v128.load(xb, 64), v128.load(xb, 80), v128.load(xb, 96), v128.load(xb, 112)));
          wb += 64;
          xb += 128;
        }
        xb = xp;
        wb = wp;
        for (let b = 0; b < bpg; b++) {
          const w2 = v128.load(wb, 32);
          const w3 = v128.load(wb, 48);
          a2 = i32x4.add(a2, dot32(w2, v128.load(xb), v128.load(xb, 16), v128.load(xb, 32), v128.load(xb, 48)));
          a3 = i32x4.add(a3, dot32(w3, v128.load(xb), v128.load(xb, 16), v128.load(xb, 32), v128.load(xb, 48)));
          b2 = i32x4.add(b2, dot32(w2, v128.load(xb, 64), v128.load(xb, 80), v128.load(xb, 96), v128.load(xb, 112)));
          b3 = i32x4.add(b3, dot32(w3, v128.load(xb, 64), v128.load(xb, 80), v128.load(xb, 96), v128.load(xb, 112)));
          wb += 64;
          xb += 128;
        }
        wp = wb;
        xp = xb;
        const gi = <usize>g << 2;
        const z = v128.load(zt + (gi << 2));
        const dh = i32x4.sub(reduce4i(a0, a1, a2, a3), i32x4.mul(z, i32x4.splat(load<i32>(xsumr + (gi << 1)))));
        const dl = i32x4.sub(reduce4i(b0, b1, b2, b3), i32x4.mul(z, i32x4.splat(load<i32>(xsumr + (gi << 1), 4))));
        const d = f32x4.add(f32x4.convert_i32x4_s(dh), f32x4.mul(f32x4.convert_i32x4_s(dl), inv32768));
        const f = f32x4.mul(d, v128.load(st + (gi << 2)));
        acc = f32x4.add(acc, f32x4.mul(f, f32x4.splat(load<f32>(xsr + gi))));
      }
      v128.store(out + (<usize>(r * outF + t * 4) << 2), f32x4.add(acc, bv));
    }
  }
}

/**
 * gptqMatmulS16 for several rows (prefill): each (tile, group) of weights is unpacked once into
 * the thread's scratch as i16 nibble vectors (per block, column, shift: 16 bytes), then every row
 * runs only the dot products. Integer sums are order-free and the f32 chain per output is the same
 * (0 + f_0 + f_1 + … + bias), so results are bitwise equal to gptqMatmulS16.
 * scratch: per thread (gsize / 32) · 256 bytes at scratch + tid · scratchStride.
 */
export function gptqMatmulS16M(lo: i32, hi: i32, tid: i32, rows: i32, inF: i32, outF: i32, gsize: i32, W: usize, S: usize, Z: usize, xq: usize, xs: usize, xsum: usize, bias: usize, out: usize, scratch: usize, scratchStride: i32): void {
  const groups = inF / gsize;
  const bpg = gsize >> 5;
  const tileBytes = <usize>inF << 1;
  const gBytes = <usize>groups << 4;
  const m = i16x8.splat(15);
  const inv32768 = f32x4.splat(<f32>1.0 / <f32>32768.0);
  const u = scratch + <usize>tid * <usize>scratchStride;
  for (let t = lo; t < hi; t++) {
    const wt = W + <usize>t * tileBytes;
    const st = S + <usize>t * gBytes;
    const zt = Z + <usize>t * gBytes;
    const oc = out + (<usize>(t * 4) << 2);
    for (let g = 0; g < groups; g++) {
      // unpack: block b, column j, shift s → u + ((b·4 + j)·4 + s)·16
      const wg = wt + (<usize>(g * bpg) << 6);
      for (let b = 0; b < bpg; b++) {
        for (let j = 0; j < 4; j++) {
          const w = v128.load(wg + (<usize>(b * 4 + j) << 4));
          const d = u + (<usize>(b * 4 + j) << 6);
          v128.store(d, v128.and(w, m));
          v128.store(d, v128.and(i16x8.shr_u(w, 4), m), 16);
          v128.store(d, v128.and(i16x8.shr_u(w, 8), m), 32);
          v128.store(d, i16x8.shr_u(w, 12), 48);
        }
      }
      const gi = <usize>g << 2;
      const z = v128.load(zt + (gi << 2));
      const sg = v128.load(st + (gi << 2));
      for (let r = 0; r < rows; r++) {
        const xp = xq + <usize>r * inF * 4 + (<usize>(g * bpg) << 7);
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), b0 = i32x4.splat(0), b1 = i32x4.splat(0);
        let a2 = i32x4.splat(0), a3 = i32x4.splat(0), b2 = i32x4.splat(0), b3 = i32x4.splat(0);
        for (let b = 0; b < bpg; b++) {
          const xb = xp + (<usize>b << 7);
          const e = u + (<usize>b << 8);
          const h0 = v128.load(xb), h1 = v128.load(xb, 16), h2 = v128.load(xb, 32), h3 = v128.load(xb, 48);
          a0 = i32x4.add(a0, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(v128.load(e), h0), i32x4.dot_i16x8_s(v128.load(e, 16), h1)), i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 32), h2), i32x4.dot_i16x8_s(v128.load(e, 48), h3))));
          a1 = i32x4.add(a1, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 64), h0), i32x4.dot_i16x8_s(v128.load(e, 80), h1)), i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 96), h2), i32x4.dot_i16x8_s(v128.load(e, 112), h3))));
          a2 = i32x4.add(a2, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 128), h0), i32x4.dot_i16x8_s(v128.load(e, 144), h1)), i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 160), h2), i32x4.dot_i16x8_s(v128.load(e, 176), h3))));
          a3 = i32x4.add(a3, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 192), h0), i32x4.dot_i16x8_s(v128.load(e, 208), h1)), i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 224), h2), i32x4.dot_i16x8_s(v128.load(e, 240), h3))));
          const l0 = v128.load(xb, 64), l1 = v128.load(xb, 80), l2 = v128.load(xb, 96), l3 = v128.load(xb, 112);
          b0 = i32x4.add(b0, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(v128.load(e), l0), i32x4.dot_i16x8_s(v128.load(e, 16), l1)), i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 32), l2), i32x4.dot_i16x8_s(v128.load(e, 48), l3))));
          b1 = i32x4.add(b1, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 64), l0), i32x4.dot_i16x8_s(v128.load(e, 80), l1)), i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 96), l2), i32x4.dot_i16x8_s(v128.load(e, 112), l3))));
          b2 = i32x4.add(b2, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 128), l0), i32x4.dot_i16x8_s(v128.load(e, 144), l1)), i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 160), l2), i32x4.dot_i16x8_s(v128.load(e, 176), l3))));
          b3 = i32x4.add(b3, i32x4.add(i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 192), l0), i32x4.dot_i16x8_s(v128.load(e, 208), l1)), i32x4.add(i32x4.dot_i16x8_s(v128.load(e, 224), l2), i32x4.dot_i16x8_s(v128.load(e, 240), l3))));
        }
        const xsumr = xsum + (<usize>(r * groups) << 3);
        const dh = i32x4.sub(reduce4i(a0, a1, a2, a3), i32x4.mul(z, i32x4.splat(load<i32>(xsumr + (gi << 1)))));
        const dl = i32x4.sub(reduce4i(b0, b1, b2, b3), i32x4.mul(z, i32x4.splat(load<i32>(xsumr + (gi << 1), 4))));
        const d = f32x4.add(f32x4.convert_i32x4_s(dh), f32x4.mul(f32x4.convert_i32x4_s(dl), inv32768));
        const f = f32x4.mul(f32x4.mul(d, sg), f32x4.splat(load<f32>(xs + (<usize>(r * groups + g) << 2))));
        const o = oc + <usize>r * outF * 4;
        v128.store(o, f32x4.add(g == 0 ? f32x4.splat(0) : v128.load(o), f));
      }
    }
    if (bias) {
      const bv = v128.load(bias + (<usize>t << 4));
      for (let r = 0; r < rows; r++) {
        const o = oc + <usize>r * outF * 4;
        v128.store(o, f32x4.add(v128.load(o), bv));
      }
    } else {
      // the single-row kernel adds a zero bias: keep −0 → +0 identical
      for (let r = 0; r < rows; r++) {
        const o = oc + <usize>r * outF * 4;
        v128.store(o, f32x4.add(v128.load(o), f32x4.splat(0)));
      }
    }
  }
}

/** f32 activation rows in the permuted block order (exact mode). */
export function gptqPrepF32(lo: i32, hi: i32, tid: i32, inF: i32, x: usize, perm: usize, xf: usize): void {
  for (let r = lo; r < hi; r++) {
    const xr = x + <usize>r * inF * 4;
    const fr = xf + <usize>r * inF * 4;
    for (let k = 0; k < inF; k++) {
      const src = perm ? load<i32>(perm + (<usize>k << 2)) : k;
      const pos = (k & ~31) + permPos(k & 31);
      store<f32>(fr + (<usize>pos << 2), load<f32>(xr + (<usize>src << 2)));
    }
  }
}

/** Sums the 4 lanes of each of a0..a3 into one vector [Σa0, Σa1, Σa2, Σa3] (i32 or f32 adds). */
@inline function reduce4i(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const p = i32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const q = i32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(p, q, 0, 1, 4, 5), i32x4.shuffle(p, q, 2, 3, 6, 7));
}
@inline function reduce4f(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const p = f32x4.add(i32x4.shuffle(a0, a1, 0, 4, 1, 5), i32x4.shuffle(a0, a1, 2, 6, 3, 7));
  const q = f32x4.add(i32x4.shuffle(a2, a3, 0, 4, 1, 5), i32x4.shuffle(a2, a3, 2, 6, 3, 7));
  return f32x4.add(i32x4.shuffle(p, q, 0, 1, 4, 5), i32x4.shuffle(p, q, 2, 3, 6, 7));
}

/** Σ over the block of q·x for one column word vector w (32 rows) against the permuted x. */
@inline function dot32(w: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const m = i16x8.splat(15);
  const d0 = i32x4.dot_i16x8_s(v128.and(w, m), x0);
  const d1 = i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(w, 4), m), x1);
  const d2 = i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(w, 8), m), x2);
  const d3 = i32x4.dot_i16x8_s(i16x8.shr_u(w, 12), x3);
  return i32x4.add(i32x4.add(d0, d1), i32x4.add(d2, d3));
}

/**
 * out[r, 4t..4t+3] for tiles t ∈ [lo, hi): Σ_g xs[r,g] · S[t,g] · (Σ_k q·xq − Z[t,g] · xsum[r,g]) + bias.
 * The integer part is exact (|Σ| < 2^31 for groups ≤ 2048 rows); one f32 rounding chain per group.
 */
export function gptqMatmulI16(lo: i32, hi: i32, tid: i32, rows: i32, inF: i32, outF: i32, gsize: i32, W: usize, S: usize, Z: usize, xq: usize, xs: usize, xsum: usize, bias: usize, out: usize): void {
  const groups = inF / gsize;
  const bpg = gsize >> 5;
  const tileBytes = <usize>inF << 1;
  const gBytes = <usize>groups << 4;
  for (let t = lo; t < hi; t++) {
    const wt = W + <usize>t * tileBytes;
    const st = S + <usize>t * gBytes;
    const zt = Z + <usize>t * gBytes;
    const bv = bias ? v128.load(bias + (<usize>t << 4)) : f32x4.splat(0);
    for (let r = 0; r < rows; r++) {
      let acc = f32x4.splat(0);
      let wp = wt;
      let xp = xq + <usize>r * inF * 2;
      const xsr = xs + (<usize>(r * groups) << 2);
      const xsumr = xsum + (<usize>(r * groups) << 2);
      for (let g = 0; g < groups; g++) {
        let a0 = i32x4.splat(0), a1 = i32x4.splat(0), a2 = i32x4.splat(0), a3 = i32x4.splat(0);
        for (let b = 0; b < bpg; b++) {
          const x0 = v128.load(xp);
          const x1 = v128.load(xp, 16);
          const x2 = v128.load(xp, 32);
          const x3 = v128.load(xp, 48);
          a0 = i32x4.add(a0, dot32(v128.load(wp), x0, x1, x2, x3));
          a1 = i32x4.add(a1, dot32(v128.load(wp, 16), x0, x1, x2, x3));
          a2 = i32x4.add(a2, dot32(v128.load(wp, 32), x0, x1, x2, x3));
          a3 = i32x4.add(a3, dot32(v128.load(wp, 48), x0, x1, x2, x3));
          wp += 64;
          xp += 64;
        }
        const gi = <usize>g << 2;
        const s = reduce4i(a0, a1, a2, a3);
        const d = i32x4.sub(s, i32x4.mul(v128.load(zt + (gi << 2)), i32x4.splat(load<i32>(xsumr + gi))));
        const f = f32x4.mul(f32x4.convert_i32x4_s(d), v128.load(st + (gi << 2)));
        acc = f32x4.add(acc, f32x4.mul(f, f32x4.splat(load<f32>(xsr + gi))));
      }
      v128.store(out + (<usize>(r * outF + t * 4) << 2), f32x4.add(acc, bv));
    }
  }
}

/** Exact mode: f32 activations, (q − zero) converted to f32 per element. */
export function gptqMatmulF32(lo: i32, hi: i32, tid: i32, rows: i32, inF: i32, outF: i32, gsize: i32, W: usize, S: usize, Z: usize, xf: usize, bias: usize, out: usize): void {
  const groups = inF / gsize;
  const bpg = gsize >> 5;
  const tileBytes = <usize>inF << 1;
  const gBytes = <usize>groups << 4;
  const m = i16x8.splat(15);
  for (let t = lo; t < hi; t++) {
    const wt = W + <usize>t * tileBytes;
    const st = S + <usize>t * gBytes;
    const zt = Z + <usize>t * gBytes;
    const bv = bias ? v128.load(bias + (<usize>t << 4)) : f32x4.splat(0);
    for (let r = 0; r < rows; r++) {
      let acc = f32x4.splat(0);
      let wp = wt;
      let xp = xf + <usize>r * inF * 4;
      for (let g = 0; g < groups; g++) {
        const zp = zt + (<usize>g << 4);
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let j = 0; j < 4; j++) {
          const z = i16x8.splat(<i16>load<i32>(zp + (<usize>j << 2)));
          let a = f32x4.splat(0);
          let xb = xp;
          let wb = wp + (<usize>j << 4);
          for (let b = 0; b < bpg; b++) {
            const w = v128.load(wb);
            for (let s = 0; s < 4; s++) {
              const e = i16x8.sub(v128.and(i16x8.shr_u(w, <i32>(s << 2)), m), z);
              const lo4 = f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(e));
              const hi4 = f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(e));
              a = f32x4.add(a, f32x4.mul(lo4, v128.load(xb + (<usize>s << 5))));
              a = f32x4.add(a, f32x4.mul(hi4, v128.load(xb + (<usize>s << 5), 16)));
            }
            wb += 64;
            xb += 128;
          }
          if (j == 0) a0 = a;
          else if (j == 1) a1 = a;
          else if (j == 2) a2 = a;
          else a3 = a;
        }
        acc = f32x4.add(acc, f32x4.mul(reduce4f(a0, a1, a2, a3), v128.load(st + (<usize>g << 4))));
        wp += <usize>bpg << 6;
        xp += <usize>bpg << 7;
      }
      v128.store(out + (<usize>(r * outF + t * 4) << 2), f32x4.add(acc, bv));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Row ops.

/** out[r] = x[r] · (1 / √(mean(x[r]²) + eps)) · w for rows [lo, hi). */
export function rmsNorm(lo: i32, hi: i32, tid: i32, n: i32, x: usize, w: usize, eps: f32, out: usize): void {
  const n4 = n & ~3;
  for (let r = lo; r < hi; r++) {
    const xr = x + <usize>r * n * 4;
    const or = out + <usize>r * n * 4;
    let a = f32x4.splat(0);
    for (let k = 0; k < n4; k += 4) {
      const v = v128.load(xr + (<usize>k << 2));
      a = f32x4.add(a, f32x4.mul(v, v));
    }
    let ss = hsum(a);
    for (let k = n4; k < n; k++) {
      const v = load<f32>(xr + (<usize>k << 2));
      ss += v * v;
    }
    const inv: f32 = <f32>1.0 / Mathf.sqrt(ss / <f32>n + eps);
    const iv = f32x4.splat(inv);
    for (let k = 0; k < n4; k += 4) {
      const o = <usize>k << 2;
      v128.store(or + o, f32x4.mul(f32x4.mul(v128.load(xr + o), iv), v128.load(w + o)));
    }
    for (let k = n4; k < n; k++) {
      const o = <usize>k << 2;
      store<f32>(or + o, load<f32>(xr + o) * inv * load<f32>(w + o));
    }
  }
}

/**
 * Rotate-half RoPE in place on rows [lo, hi): cs holds per row rd/2 cosines then rd/2 sines.
 * out1 = x1·cos + (−x2)·sin, out2 = x2·cos + x1·sin (torch's t·cos + rotate_half(t)·sin).
 */
export function rope(lo: i32, hi: i32, tid: i32, heads: i32, stride: i32, offset: i32, headDim: i32, rd: i32, x: usize, cs: usize): void {
  const half = rd >> 1;
  for (let r = lo; r < hi; r++) {
    const row = x + (<usize>(r * stride + offset) << 2);
    const c = cs + <usize>r * rd * 4;
    for (let h = 0; h < heads; h++) {
      const base = row + <usize>h * headDim * 4;
      for (let i = 0; i < half; i++) {
        const p1 = base + (<usize>i << 2);
        const p2 = base + (<usize>(i + half) << 2);
        const x1 = load<f32>(p1);
        const x2 = load<f32>(p2);
        const co = load<f32>(c + (<usize>i << 2));
        const si = load<f32>(c + (<usize>(i + half) << 2));
        store<f32>(p1, x1 * co + -x2 * si);
        store<f32>(p2, x2 * co + x1 * si);
      }
    }
  }
}

/** out[i] = a[i] · silu(b[i]) = a · (b / (1 + e^−b)). */
export function swiglu(lo: i32, hi: i32, tid: i32, out: usize, a: usize, b: usize): void {
  for (let i = lo; i < hi; i++) {
    const o = <usize>i << 2;
    const bv = load<f32>(b + o);
    store<f32>(out + o, load<f32>(a + o) * (bv / (<f32>1.0 + Mathf.exp(-bv))));
  }
}

/** x[i] += y[i]. */
export function addInPlace(lo: i32, hi: i32, tid: i32, x: usize, y: usize): void {
  let i = lo;
  for (; i + 4 <= hi; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, f32x4.add(v128.load(x + o), v128.load(y + o)));
  }
  for (; i < hi; i++) {
    const o = <usize>i << 2;
    store<f32>(x + o, load<f32>(x + o) + load<f32>(y + o));
  }
}

@inline function embedBody<K>(lo: i32, hi: i32, dim: i32, table: usize, ids: usize, out: usize): void {
  const E: usize = esize<K>();
  const n4 = dim & ~3;
  for (let r = lo; r < hi; r++) {
    const src = table + <usize>load<i32>(ids + (<usize>r << 2)) * dim * E;
    const dst = out + <usize>r * dim * 4;
    for (let k = 0; k < n4; k += 4) v128.store(dst + (<usize>k << 2), w4<K>(src + <usize>k * E));
    for (let k = n4; k < dim; k++) store<f32>(dst + (<usize>k << 2), w1<K>(src + <usize>k * E));
  }
}
export function embedF32(lo: i32, hi: i32, tid: i32, dim: i32, table: usize, ids: usize, out: usize): void {
  embedBody<f32>(lo, hi, dim, table, ids, out);
}
export function embedF16(lo: i32, hi: i32, tid: i32, dim: i32, table: usize, ids: usize, out: usize): void {
  embedBody<u16>(lo, hi, dim, table, ids, out);
}
export function embedBF16(lo: i32, hi: i32, tid: i32, dim: i32, table: usize, ids: usize, out: usize): void {
  embedBody<i16>(lo, hi, dim, table, ids, out);
}

/** Converts n 16-bit floats (kind 1 = f16, 2 = bf16) to f32 (uploads of small tensors). */
export function halfToF32(lo: i32, hi: i32, tid: i32, kind: i32, src: usize, dst: usize): void {
  for (let i = lo; i < hi; i++) {
    const h = <u32>load<u16>(src + (<usize>i << 1));
    store<f32>(dst + (<usize>i << 2), kind == 1 ? f16ToF32(h) : bf16ToF32(h));
  }
}

// ---------------------------------------------------------------------------------------------
// KV cache. f32: K and V [capacity][width]. int8: u8 [capacity][width] plus f32 [capacity][heads][2]
// (scale, zero) per (slot, head): q = round((x − min) / scale), x ≈ zero + q · scale with
// zero = min, scale = (max − min) / 255 (0 when the head's values are all equal).

/** Quantizes rows [lo, hi) of src (row r at r·stride + offset) into slots slot0 + r. */
export function kvQuant(lo: i32, hi: i32, tid: i32, heads: i32, headDim: i32, src: usize, stride: i32, offset: i32, slot0: i32, dst: usize, par: usize): void {
  const width = heads * headDim;
  for (let r = lo; r < hi; r++) {
    const row = src + (<usize>(r * stride + offset) << 2);
    const slot = slot0 + r;
    for (let h = 0; h < heads; h++) {
      const v = row + <usize>h * headDim * 4;
      let mn = load<f32>(v), mx = mn;
      for (let d = 1; d < headDim; d++) {
        const e = load<f32>(v + (<usize>d << 2));
        mn = Mathf.min(mn, e);
        mx = Mathf.max(mx, e);
      }
      const scale: f32 = (mx - mn) / <f32>255.0;
      const inv: f32 = scale > 0 ? <f32>1.0 / scale : 0;
      const q = dst + <usize>slot * width + <usize>h * headDim;
      for (let d = 0; d < headDim; d++) {
        let qi = <i32>nearest<f32>((load<f32>(v + (<usize>d << 2)) - mn) * inv);
        if (qi < 0) qi = 0;
        if (qi > 255) qi = 255;
        store<u8>(q + <usize>d, <u8>qi);
      }
      const p = par + (<usize>(slot * heads + h) << 3);
      store<f32>(p, scale);
      store<f32>(p, mn, 4);
    }
  }
}

/**
 * Causal attention for units u = r · heads + h in [lo, hi): query row r (absolute position
 * pos0 + r) sees slots [0, kvLen − rows + r]. q is scaled by logn[r] (f32 table), scores by
 * `scale`; softmax in f32 with max subtraction. quant: 0 f32, 1 int8 (kPar/vPar per slot/head).
 * scratch: per thread (kvLen + headDim) floats at scratch + tid · scratchStride.
 */
export function attention(lo: i32, hi: i32, tid: i32, rows: i32, heads: i32, headDim: i32, kvLen: i32, q: usize, qStride: i32, qOff: i32, K: usize, V: usize, quant: i32, kPar: usize, vPar: usize, out: usize, scale: f32, logn: usize, scratch: usize, scratchStride: i32): void {
  const width = heads * headDim;
  const sc = scratch + <usize>tid * <usize>scratchStride;
  const qs = sc + (<usize>kvLen << 2);
  const d4 = headDim & ~3;
  for (let u = lo; u < hi; u++) {
    const r = u / heads;
    const h = u - r * heads;
    const n = kvLen - rows + r + 1;
    const qp = q + (<usize>(r * qStride + qOff + h * headDim) << 2);
    const ln = load<f32>(logn + (<usize>r << 2));
    for (let d = 0; d < headDim; d++) store<f32>(qs + (<usize>d << 2), load<f32>(qp + (<usize>d << 2)) * ln);
    let mx: f32 = -Infinity;
    for (let j = 0; j < n; j++) {
      let dot: f32;
      if (quant == 0) {
        const kp = K + (<usize>(j * width + h * headDim) << 2);
        let a = f32x4.splat(0);
        for (let d = 0; d < d4; d += 4) a = f32x4.add(a, f32x4.mul(v128.load(qs + (<usize>d << 2)), v128.load(kp + (<usize>d << 2))));
        dot = hsum(a);
        for (let d = d4; d < headDim; d++) dot += load<f32>(qs + (<usize>d << 2)) * load<f32>(kp + (<usize>d << 2));
      } else {
        const kp = K + <usize>(j * width + h * headDim);
        const pp = kPar + (<usize>(j * heads + h) << 3);
        const ks = load<f32>(pp);
        const kz = load<f32>(pp, 4);
        dot = 0;
        for (let d = 0; d < headDim; d++) dot += load<f32>(qs + (<usize>d << 2)) * (kz + <f32>load<u8>(kp + <usize>d) * ks);
      }
      const s = dot * scale;
      store<f32>(sc + (<usize>j << 2), s);
      if (s > mx) mx = s;
    }
    let sum: f32 = 0;
    for (let j = 0; j < n; j++) {
      const e = Mathf.exp(load<f32>(sc + (<usize>j << 2)) - mx);
      store<f32>(sc + (<usize>j << 2), e);
      sum += e;
    }
    const op = out + (<usize>(r * width + h * headDim) << 2);
    for (let d = 0; d < headDim; d++) store<f32>(op + (<usize>d << 2), 0);
    for (let j = 0; j < n; j++) {
      const p = load<f32>(sc + (<usize>j << 2)) / sum;
      if (quant == 0) {
        const vp = V + (<usize>(j * width + h * headDim) << 2);
        const pv = f32x4.splat(p);
        for (let d = 0; d < d4; d += 4) {
          const o = <usize>d << 2;
          v128.store(op + o, f32x4.add(v128.load(op + o), f32x4.mul(pv, v128.load(vp + o))));
        }
        for (let d = d4; d < headDim; d++) {
          const o = <usize>d << 2;
          store<f32>(op + o, load<f32>(op + o) + p * load<f32>(vp + o));
        }
      } else {
        const vp = V + <usize>(j * width + h * headDim);
        const pp = vPar + (<usize>(j * heads + h) << 3);
        const vs = load<f32>(pp);
        const vz = load<f32>(pp, 4);
        for (let d = 0; d < headDim; d++) {
          const o = <usize>d << 2;
          store<f32>(op + o, load<f32>(op + o) + p * (vz + <f32>load<u8>(vp + <usize>d) * vs));
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Bench probe: sums bytes [lo·64, hi·64) of a region as i32 lanes (what a kernel that only reads
// could reach). Returns the sum so the loop is not removed.
export function readProbe(lo: i32, hi: i32, tid: i32, p: usize): i32 {
  let a = i32x4.splat(0), b = i32x4.splat(0), c = i32x4.splat(0), d = i32x4.splat(0);
  for (let i = lo; i < hi; i++) {
    const q = p + (<usize>i << 6);
    a = i32x4.add(a, v128.load(q));
    b = i32x4.add(b, v128.load(q, 16));
    c = i32x4.add(c, v128.load(q, 32));
    d = i32x4.add(d, v128.load(q, 48));
  }
  const s = i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
  return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
}

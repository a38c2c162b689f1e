// One GEMV input row quantised for the integer int4 GEMV (gemv_int4.wgsl with IDOT). Each group
// of 8·rpg values (one GPTQ group of the weights, so one scale per unit of the GEMV) becomes
// 24-bit integers X = round(v / s), s = max|v| / (2^23 − 1): |v − s·X| ≤ s / 2, 6e-8 of the
// group's largest value (f32 rounding is 6e-8 of each value). X = 65536·h + 256·m + l with h a
// signed byte and m, l unsigned ones. Word row r (values 8r..8r+7) is stored as two vec4<u32> of
// bytes: h of values 0, 2, 4, 6 and of 1, 3, 5, 7, m of the same, then l of the same and the
// row's sums Σh (i32) and Σm | Σl << 16 (the zero term). The even/odd split lines the values up
// with a weight word's nibbles as w & 0x0f0f0f0f and (w >> 4) & 0x0f0f0f0f give them. Per group
// also (s, Σ x²): with NORM, v = x·γ and the GEMV's prologue sums the groups' Σ x² for the norm.
struct P { R: u32, rpg: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
//#if NORM
@group(0) @binding(2) var<storage, read> lnw: array<vec4f>;
//#endif
@group(0) @binding(3) var<storage, read_write> xq: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> xg: array<vec2f>;

const WG: u32 = 32u;
const XMAX: f32 = 8388607.0;
var<workgroup> rmax: array<f32, WG>;
var<workgroup> rsq: array<f32, WG>;

// the value quantised: x, or with NORM x·γ (the norm's factor is applied by the GEMV at the end)
fn val(i: u32) -> vec4f {
//#if NORM
  return x4[i] * lnw[i];
//#else
  return x4[i];
//#endif
}

// the low bytes of four integers as one u32 (two's complement for negative ones)
fn bytes4(v: vec4i) -> u32 {
  let u = bitcast<vec4u>(v) & vec4u(0xffu);
  return u.x | (u.y << 8u) | (u.z << 16u) | (u.w << 24u);
}
fn hsum(v: vec4i) -> i32 {
  return (v.x + v.y) + (v.z + v.w);
}

@compute @workgroup_size(WG)
fn quant(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let g = wg.x;
  let r0 = g * p.rpg;
  let r1 = min(p.R, r0 + p.rpg);
  var m = 0.0;
  var sq = 0.0;
  for (var r = r0 + l; r < r1; r += WG) {
    let a = x4[2u * r];
    let b = x4[2u * r + 1u];
    sq += dot(a, a) + dot(b, b);
    let va = abs(val(2u * r));
    let vb = abs(val(2u * r + 1u));
    m = max(m, max(max(max(va.x, va.y), max(va.z, va.w)), max(max(vb.x, vb.y), max(vb.z, vb.w))));
  }
  rmax[l] = m;
  rsq[l] = sq;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (l < s) {
      rmax[l] = max(rmax[l], rmax[l + s]);
      rsq[l] = rsq[l] + rsq[l + s];
    }
    workgroupBarrier();
  }
  let mx = rmax[0];
  var inv = 0.0;
  if (mx > 0.0) { inv = XMAX / mx; }
  for (var r = r0 + l; r < r1; r += WG) {
    let qa = clamp(vec4i(round(val(2u * r) * inv)), vec4i(-8388607), vec4i(8388607));
    let qb = clamp(vec4i(round(val(2u * r + 1u) * inv)), vec4i(-8388607), vec4i(8388607));
    let e = vec4i(qa.x, qa.z, qb.x, qb.z);
    let o = vec4i(qa.y, qa.w, qb.y, qb.w);
    let eh = e >> vec4u(16u);
    let oh = o >> vec4u(16u);
    let em = (e >> vec4u(8u)) & vec4i(0xff);
    let om = (o >> vec4u(8u)) & vec4i(0xff);
    let el = e & vec4i(0xff);
    let ol = o & vec4i(0xff);
    xq[2u * r] = vec4u(bytes4(eh), bytes4(oh), bytes4(em), bytes4(om));
    let sm = bitcast<u32>(hsum(em + om));
    let sl = bitcast<u32>(hsum(el + ol));
    xq[2u * r + 1u] = vec4u(bytes4(el), bytes4(ol), bitcast<u32>(hsum(eh + oh)), sm | (sl << 16u));
  }
  if (l == 0u) { xg[g] = vec2f(mx / XMAX, rsq[0]); }
}

// One GEMV input row quantised for the integer int4 GEMV (gemv_int4.wgsl with IDOT). Each group
// of 8·rpg values (one GPTQ group of the weights, so one scale per unit of the GEMV) becomes
// 16-bit integers X = round(v / s), s = max|v| / 32767: |v − s·X| ≤ s / 2, ≈ 1.5e-5 of the
// group's largest value. Word row r (values 8r..8r+7) is stored as four u32 of bytes: the high
// bytes (signed) of values 0, 2, 4, 6 and of 1, 3, 5, 7, then the low bytes (unsigned) of the
// same, so that X = 256·high + low and a weight word's nibbles line up with them as they come out
// of w & 0x0f0f0f0f and (w >> 4) & 0x0f0f0f0f. Also ΣX per word row (the zero term, in integers)
// and per group (s, Σ x²): with NORM, v = x·γ and the GEMV's prologue sums the groups' Σ x².
struct P { R: u32, rpg: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
//#if NORM
@group(0) @binding(2) var<storage, read> lnw: array<vec4f>;
//#endif
@group(0) @binding(3) var<storage, read_write> xq: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> xrs: array<i32>;
@group(0) @binding(5) var<storage, read_write> xg: array<vec2f>;

const WG: u32 = 32u;
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
  if (mx > 0.0) { inv = 32767.0 / mx; }
  for (var r = r0 + l; r < r1; r += WG) {
    let qa = clamp(vec4i(round(val(2u * r) * inv)), vec4i(-32767), vec4i(32767));
    let qb = clamp(vec4i(round(val(2u * r + 1u) * inv)), vec4i(-32767), vec4i(32767));
    let e = vec4i(qa.x, qa.z, qb.x, qb.z);
    let o = vec4i(qa.y, qa.w, qb.y, qb.w);
    xq[r] = vec4u(bytes4(e >> vec4u(8u)), bytes4(o >> vec4u(8u)), bytes4(e), bytes4(o));
    let t = (qa + qb);
    xrs[r] = (t.x + t.y) + (t.z + t.w);
  }
  if (l == 0u) { xg[g] = vec2f(mx / 32767.0, rsq[0]); }
}

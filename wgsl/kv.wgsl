// KV cache writes. f32 stores: K and V are [capacity][width] f32. int8 stores: [capacity][width/4]
// u32 (4 bytes, byte i = dim 4w+i) + meta [capacity][heads] vec2 (lo, scale): asymmetric 8-bit
// per (slot, head), scale = (max − min)/255 (1 when 0), q = round((x − min)/scale),
// value = lo + q·scale.
struct P { rows: u32, width: u32, slot: u32, kStride: u32, kOff: u32, vStride: u32, vOff: u32, headDim: u32, heads: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
//#if F32
@group(0) @binding(1) var<storage, read_write> K: array<f32>;
@group(0) @binding(2) var<storage, read_write> V: array<f32>;
//#else
@group(0) @binding(1) var<storage, read_write> K: array<u32>;
@group(0) @binding(2) var<storage, read_write> V: array<u32>;
@group(0) @binding(4) var<storage, read_write> KM: array<vec2f>;
@group(0) @binding(5) var<storage, read_write> VM: array<vec2f>;
//#endif
@group(0) @binding(3) var<storage, read> srcK: array<f32>;
@group(0) @binding(6) var<storage, read> srcV: array<f32>;

//#if F32
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let id = (wg.x + wg.y * nw.x) * 256u + l;
  if (id >= p.rows * p.width) { return; }
  let r = id / p.width;
  let c = id - r * p.width;
  let d = (p.slot + r) * p.width + c;
  K[d] = srcK[r * p.kStride + p.kOff + c];
  V[d] = srcV[r * p.vStride + p.vOff + c];
}
//#else
//#include kv_int8
fn ld(isV: bool, i: u32) -> f32 { if (isV) { return srcV[i]; } return srcK[i]; }
fn ld4(isV: bool, i: u32) -> vec4f { return vec4f(ld(isV, i), ld(isV, i + 1u), ld(isV, i + 2u), ld(isV, i + 3u)); }

// one workgroup per (row, head, k|v); 64 threads, 4 dims each
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let r = wg.x;
  let h = wg.y;
  let isV = wg.z == 1u;
  var base = r * p.kStride + p.kOff + h * p.headDim;
  if (isV) { base = r * p.vStride + p.vOff + h * p.headDim; }
  let words = p.headDim / 4u;
  var mm = vec2f(3.4e38, -3.4e38);
  if (l < words) {
    let v = ld4(isV, base + 4u * l);
    mm = vec2f(min(min(v.x, v.y), min(v.z, v.w)), max(max(v.x, v.y), max(v.z, v.w)));
  }
  for (var j = l + 64u; j < words; j += 64u) { mm = minmax4(mm, ld4(isV, base + 4u * j)); }
  let ls = kvRange(l, mm);
  let slot = p.slot + r;
  for (var j = l; j < words; j += 64u) {
    let d = slot * (p.width / 4u) + h * words + j;
    let packed = kvPack(ld4(isV, base + 4u * j), ls);
    if (isV) { V[d] = packed; } else { K[d] = packed; }
  }
  if (l == 0u) {
    if (isV) { VM[slot * p.heads + h] = ls; } else { KM[slot * p.heads + h] = ls; }
  }
}
//#endif

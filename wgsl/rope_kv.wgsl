// RoPE of q and k fused with the KV-cache write (one dispatch instead of rope q, rope k, kvWrite).
// Rows live in one fused q|k|v buffer X (row r, column c at r·stride + c). One workgroup per
// (row, head, which): which 0 = k (rotated in place in X, then stored), 1 = v (stored),
// 2 = q (rotated in place only). The rotation is rope.wgsl's (same table, same expressions);
// the stores are kv.wgsl's (f32 copy, or int8 with a per-(slot, head) lo/scale).
struct P { rows: u32, width: u32, slot: u32, stride: u32, kOff: u32, vOff: u32, qOff: u32, headDim: u32, heads: u32, half: u32, pos0: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> X: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<vec2f>;
//#include rope_pair
//#if F32
@group(0) @binding(3) var<storage, read_write> K: array<f32>;
@group(0) @binding(4) var<storage, read_write> V: array<f32>;
//#else
@group(0) @binding(3) var<storage, read_write> K: array<u32>;
@group(0) @binding(4) var<storage, read_write> V: array<u32>;
@group(0) @binding(5) var<storage, read_write> KM: array<vec2f>;
@group(0) @binding(6) var<storage, read_write> VM: array<vec2f>;
//#include kv_int8
//#endif
const MAXHD: u32 = 512u;
var<workgroup> hv: array<f32, MAXHD>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) l: u32) {
  let r = wg.x;
  let h = wg.y;
  let which = wg.z;
  var off = p.kOff;
  if (which == 1u) { off = p.vOff; } else if (which == 2u) { off = p.qOff; }
  let base = r * p.stride + off + h * p.headDim;
  for (var i = l; i < p.headDim; i += 64u) { hv[i] = X[base + i]; }
  workgroupBarrier();
  if (which != 1u) {
    let cb = (p.pos0 + r) * p.half;
    for (var i = l; i < p.half; i += 64u) {
      let rot = ropePair(hv[i], hv[i + p.half], cs[cb + i]);
      X[base + i] = rot.x;
      X[base + i + p.half] = rot.y;
      hv[i] = rot.x;
      hv[i + p.half] = rot.y;
    }
  }
  workgroupBarrier();
  if (which == 2u) { return; }
  let slot = p.slot + r;
//#if F32
  let d0 = slot * p.width + h * p.headDim;
  for (var i = l; i < p.headDim; i += 64u) {
    if (which == 0u) { K[d0 + i] = hv[i]; } else { V[d0 + i] = hv[i]; }
  }
//#else
  let words = p.headDim / 4u;
  var mm = vec2f(3.4e38, -3.4e38);
  for (var j = l; j < words; j += 64u) { mm = minmax4(mm, vec4f(hv[4u * j], hv[4u * j + 1u], hv[4u * j + 2u], hv[4u * j + 3u])); }
  let ls = kvRange(l, mm);
  for (var j = l; j < words; j += 64u) {
    let d = slot * (p.width / 4u) + h * words + j;
    let packed = kvPack(vec4f(hv[4u * j], hv[4u * j + 1u], hv[4u * j + 2u], hv[4u * j + 3u]), ls);
    if (which == 0u) { K[d] = packed; } else { V[d] = packed; }
  }
  if (l == 0u) {
    if (which == 0u) { KM[slot * p.heads + h] = ls; } else { VM[slot * p.heads + h] = ls; }
  }
//#endif
}

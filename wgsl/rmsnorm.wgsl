// RMSNorm, one workgroup per row: out = x · rsqrt(mean(x²) + eps) · w (all f32, as torch's
// Qwen RMSNorm on float activations).
struct P { cols: u32, eps: f32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
//#if !INPLACE
@group(0) @binding(3) var<storage, read> x: array<f32>;
//#endif

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let row = wg.x + wg.y * nw.x;
  let base = row * p.cols;
  var s = 0.0;
  for (var c = l; c < p.cols; c += 256u) {
//#if INPLACE
    let v = o[base + c];
//#else
    let v = x[base + c];
//#endif
    s += v * v;
  }
  red[l] = s;
  workgroupBarrier();
  for (var k = 128u; k > 0u; k >>= 1u) {
    if (l < k) { red[l] += red[l + k]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0] / f32(p.cols) + p.eps);
  for (var c = l; c < p.cols; c += 256u) {
//#if INPLACE
    let v = o[base + c];
//#else
    let v = x[base + c];
//#endif
    o[base + c] = (v * inv) * w[c];
  }
}

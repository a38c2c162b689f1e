// RMSNorm, one workgroup per row: out = x · rsqrt(mean(x²) + eps) · w (all f32, as torch's
// Qwen RMSNorm on float activations). ADD fuses the residual add before it: x += y, then
// out = norm(x) (each thread re-reads only the elements it wrote). WG threads (up to 1024) so that a 5120-wide row needs
// only one or two loads per thread (a single workgroup is latency-bound otherwise); VEC reads
// vec4 when the width is a multiple of 4.
const WG: u32 = {{WG}}u;
struct P { cols: u32, eps: f32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
//#if VEC
alias T = vec4f;
//#else
alias T = f32;
//#endif
@group(0) @binding(1) var<storage, read_write> o: array<T>;
@group(0) @binding(2) var<storage, read> w: array<T>;
//#if ADD
@group(0) @binding(3) var<storage, read_write> x: array<T>;
@group(0) @binding(4) var<storage, read> y: array<T>;
//#else
//#if !INPLACE
@group(0) @binding(3) var<storage, read> x: array<T>;
//#endif
//#endif

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let row = wg.x + wg.y * nw.x;
//#if VEC
  let n = p.cols / 4u;
//#else
  let n = p.cols;
//#endif
  let base = row * n;
  var s = 0.0;
  for (var c = l; c < n; c += WG) {
//#if INPLACE
    let v = o[base + c];
//#else
//#if ADD
    let v = x[base + c] + y[base + c];
    x[base + c] = v;
//#else
    let v = x[base + c];
//#endif
//#endif
//#if VEC
    s += dot(v, v);
//#else
    s += v * v;
//#endif
  }
  red[l] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (l < k) { red[l] += red[l + k]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(red[0] / f32(p.cols) + p.eps);
  for (var c = l; c < n; c += WG) {
//#if INPLACE
    let v = o[base + c];
//#else
    let v = x[base + c];
//#endif
    o[base + c] = (v * inv) * w[c];
  }
}

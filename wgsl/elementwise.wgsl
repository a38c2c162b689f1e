// Element-wise ops on f32 activations: residual add, SwiGLU, copy, column gather.
// One thread per element; the grid may be 2-D (x·y workgroups) when n/256 exceeds 65535.
// Variants whose destination aliases a source bind that buffer once (WebGPU forbids a
// writable binding overlapping another binding of the same buffer).
struct P { n: u32, dOff: u32, aOff: u32, bOff: u32, cols: u32, _p0: u32, _p1: u32, _p2: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> d: array<f32>;
//#if !SELF
@group(0) @binding(2) var<storage, read> a: array<f32>;
//#endif
//#if TWO
@group(0) @binding(3) var<storage, read> b: array<f32>;
//#endif
//#if GATHER
@group(0) @binding(3) var<storage, read> idx: array<u32>;
//#endif

fn flat(w: vec3u, nw: vec3u, l: u32) -> u32 { return (w.x + w.y * nw.x) * 256u + l; }
fn silu(x: f32) -> f32 { return x / (1.0 + exp(-x)); }

//#if !SELF
// x += y
@compute @workgroup_size(256)
fn add(@builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = flat(w, nw, l);
  if (i < p.n) { d[p.dOff + i] = d[p.dOff + i] + a[p.aOff + i]; }
}
// dst = src
@compute @workgroup_size(256)
fn copy(@builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = flat(w, nw, l);
  if (i < p.n) { d[p.dOff + i] = a[p.aOff + i]; }
}
// out = a · silu(out)   (out aliases b)
@compute @workgroup_size(256)
fn swiglu_db(@builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = flat(w, nw, l);
  if (i < p.n) { d[p.dOff + i] = a[p.aOff + i] * silu(d[p.dOff + i]); }
}
// out = out · silu(b)   (out aliases a; b bound at binding 2)
@compute @workgroup_size(256)
fn swiglu_da(@builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = flat(w, nw, l);
  if (i < p.n) { d[p.dOff + i] = d[p.dOff + i] * silu(a[p.aOff + i]); }
}
//#endif
//#if TWO
// out = a · silu(b)
@compute @workgroup_size(256)
fn swiglu(@builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = flat(w, nw, l);
  if (i < p.n) { d[p.dOff + i] = a[p.aOff + i] * silu(b[p.bOff + i]); }
}
//#endif
//#if GATHER
// d[r·cols + j] = a[r·cols + idx[j]]   (desc_act: x in the GPTQ rows' sorted order)
@compute @workgroup_size(256)
fn gather_cols(@builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = flat(w, nw, l);
  if (i < p.n) {
    let r = i / p.cols;
    let j = i - r * p.cols;
    d[p.dOff + i] = a[p.aOff + r * p.cols + idx[j]];
  }
}
//#endif
//#if SELF
// x += x
@compute @workgroup_size(256)
fn add_self(@builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = flat(w, nw, l);
  if (i < p.n) { d[p.dOff + i] = d[p.dOff + i] + d[p.aOff + i]; }
}
// non-overlapping copy inside one buffer
@compute @workgroup_size(256)
fn copy_self(@builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = flat(w, nw, l);
  if (i < p.n) { d[p.dOff + i] = d[p.aOff + i]; }
}
// out = out · silu(out)
@compute @workgroup_size(256)
fn swiglu_self(@builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let i = flat(w, nw, l);
  if (i < p.n) { let v = d[p.dOff + i]; d[p.dOff + i] = v * silu(v); }
}
//#endif

// Rotate-half RoPE in place. cos/sin come from a host-computed table [pos][rotaryDim/2] of
// vec2 (cos, sin), built exactly as torch does in f32 (GPU sin/cos are not accurate enough
// for large angles). One thread per (row, head, i < rotaryDim/2).
struct P { rows: u32, heads: u32, headDim: u32, half: u32, stride: u32, offset: u32, pos0: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<vec2f>;
//#include rope_pair

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nw: vec3u, @builtin(local_invocation_index) l: u32) {
  let id = (wg.x + wg.y * nw.x) * 256u + l;
  let perRow = p.heads * p.half;
  if (id >= p.rows * perRow) { return; }
  let r = id / perRow;
  let rem = id - r * perRow;
  let h = rem / p.half;
  let i = rem - h * p.half;
  let base = r * p.stride + p.offset + h * p.headDim;
  let c = cs[(p.pos0 + r) * p.half + i];
  let v = ropePair(x[base + i], x[base + i + p.half], c);
  x[base + i] = v.x;
  x[base + i + p.half] = v.y;
}

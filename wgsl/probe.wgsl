// Read-bandwidth probe for benchmarks: every thread streams vec4<u32> words with a grid stride
// and folds them with xor; the result is written only when it equals a value that never occurs
// in the data, so the loads cannot be optimised away.
struct P { n4: u32, magic: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> o: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<vec4<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let stride = nw.x * 256u;
  var acc = vec4<u32>(0u);
  for (var i = gid.x; i < p.n4; i += stride) { acc ^= src[i]; }
  let v = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (v == p.magic) { o[0] = v; }
}
